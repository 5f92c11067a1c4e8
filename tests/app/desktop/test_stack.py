"""The shared desktop test stack itself: everything it starts goes away on exit, and also when
the test process is killed (a timeout's SIGKILL runs no ``finally``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHILD = r'''
import os, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.desktop_stack import (notification_daemon, secret_service, session_bus, tray_host,
                                 xserver)
with xserver() as d, tray_host(d), session_bus() as b, notification_daemon(d, b), \
        secret_service(b, Path(sys.argv[2])):
    def parent(e):
        try:
            return open(f"/proc/{e}/stat").read().rpartition(")")[2].split()[1]
        except OSError:  # gone meanwhile
            return ""
    kids = [e for e in os.listdir("/proc") if e.isdigit() and parent(e) == str(os.getpid())]
    print("up", *kids, flush=True)
    sys.stdin.readline()  # the test looked: go on
    if sys.argv[3] == "kill":
        os.kill(os.getpid(), 9)
print("down", flush=True)
'''


def _run(mode: str, home: Path) -> tuple[list[str], set[int]]:
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(home), mode],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen: set[int] = set()
    lines = []
    for line in p.stdout:
        word, *pids = line.split()
        lines.append(word)
        if word == "up":
            seen = {int(x) for x in pids}
            p.stdin.write("go\n")
            p.stdin.flush()
    p.wait(30)
    return lines, seen


def _alive(pids: set[int]) -> set[int]:
    deadline = time.monotonic() + 5
    while True:
        left = {p for p in pids if Path(f"/proc/{p}").exists()
                and "Z" not in Path(f"/proc/{p}/stat").read_text().rpartition(")")[2][:3]}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_clean_exit_and_sigkill_leave_nothing(tmp_path: Path):
    t0 = time.monotonic()
    lines, seen = _run("exit", tmp_path / "a")
    up_s = time.monotonic() - t0
    assert lines == ["up", "down"]
    assert len(seen) == 6, seen  # Xvfb, openbox, trayer, dbus-daemon, dunst, keyring
    assert not _alive(seen)
    lines, seen = _run("kill", tmp_path / "b")
    assert lines == ["up"] and len(seen) == 6
    left = _alive(seen)
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert not left, [Path(f"/proc/{p}/cmdline").read_text() for p in left]
    print(f"\nwhole stack up and down: {up_s:.2f} s")
