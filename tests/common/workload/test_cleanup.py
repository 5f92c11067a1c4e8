"""The probe never leaves processes behind: SIGTERM, SIGINT or its own timeout mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from schedcp_common.workload import Batch, Mixed, invocation


def descendants(root: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for k in kids.get(todo.pop(), []):
            found.add(k)
            todo.append(k)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def start_and_collect(argv: tuple[str, ...], want: int) -> tuple[subprocess.Popen, set[int]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    deadline = time.monotonic() + 60  # a loaded machine is slow to start them; idle: ~0.1 s
    while len(seen) < want and time.monotonic() < deadline:
        seen |= descendants(proc.pid)
        time.sleep(0.02)
    assert len(seen) >= want, f"only {len(seen)} workers appeared"
    return proc, seen


def assert_all_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 3
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"left behind: {sorted(left)}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_overload_kills_every_worker_and_grandchild(probe, sig):
    argv = invocation(Mixed(light_s=0.1, overload_s=30, short_par=2), probe).argv
    # overload: hogs + niced + forker + interactive, and the forker's short-lived children
    proc, seen = start_and_collect(argv, want=6)
    time.sleep(0.3)
    seen |= descendants(proc.pid)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 128 + sig
    doc = json.loads(out)
    assert (doc["status"], doc["signal"]) == ("interrupted", sig)
    assert_all_gone(seen)


def test_own_timeout_ends_a_run_and_its_workers(probe, tmp_path):
    never = tmp_path / "never"  # a barrier that never appears: the tasks wait for the timeout
    # 5 s: long enough for every worker to start on a loaded machine (at 1 s, with a hog per
    # core, the run could end before the last one was seen)
    argv = invocation(Batch(tasks=5, start_barrier=str(never), timeout_s=5.0), probe).argv
    proc, seen = start_and_collect(argv, want=5)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 124
    assert json.loads(out)["status"] == "timeout"
    assert_all_gone(seen)


def test_killing_the_probe_itself_takes_its_workers_along(probe):
    argv = invocation(Mixed(light_s=30, overload_s=1), probe).argv
    proc, seen = start_and_collect(argv, want=2)
    proc.kill()  # no chance to clean up: PDEATHSIG must do it
    proc.wait()
    assert_all_gone(seen)
