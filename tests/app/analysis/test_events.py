"""Exec-event detection of a new workload through the kernel's proc connector."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import psutil

from schedcp.analysis import ExecWatcher


def test_exec_and_exit_of_a_new_process_are_seen_within_a_second():
    marker = f"schedcp-test-{uuid.uuid4().hex[:8]}"
    with ExecWatcher() as w:
        t0 = time.monotonic()
        p = subprocess.Popen(["sh", "-c", "sleep 0.2", marker])
        seen: dict[str, tuple[float, object]] = {}
        for ev in w.events(timeout=3.0):
            if ev.tgid == p.pid and ev.kind not in seen:
                seen[ev.kind] = (time.monotonic(), ev)
            if "exit" in seen:
                break
        p.wait()
    t_exec, exec_ev = seen["exec"]
    t_exit, exit_ev = seen["exit"]
    print(f"exec seen {1000 * (t_exec - t0):.1f} ms after Popen, "
          f"exit {1000 * (t_exit - t0):.1f} ms")
    assert exec_ev.cmdline == ["sh", "-c", "sleep 0.2", marker]
    assert exec_ev.comm == "sh" and exec_ev.exe.endswith("sh") and exec_ev.ppid > 0
    assert exit_ev.cmdline == exec_ev.cmdline and exit_ev.exit_code == 0
    assert t_exec - t0 < 1.0 and 0.15 < t_exit - t0 < 1.2


def test_short_lived_processes_do_not_break_the_stream():
    """`true` may be gone before its name is read: the event still comes, names may be empty."""
    with ExecWatcher(kinds=("exec", "exit", "fork")) as w:
        procs = [subprocess.Popen(["true"]) for _ in range(20)]
        for p in procs:
            p.wait()
        pids = {p.pid for p in procs}
        kinds: dict[str, int] = {"fork": 0, "exec": 0, "exit": 0}
        for ev in w.events(timeout=1.0):
            if ev.tgid in pids:
                kinds[ev.kind] += 1
            if kinds["exit"] == len(pids):
                break
    assert kinds == {"fork": 20, "exec": 20, "exit": 20}, kinds


WATCH = """
from schedcp.analysis import ExecWatcher
with ExecWatcher() as w:
    print("ready", flush=True)
    for ev in w.events():
        pass
"""


def test_blocked_watcher_does_not_spin():
    p = subprocess.Popen([sys.executable, "-c", WATCH], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        proc = psutil.Process(p.pid)
        c0 = sum(proc.cpu_times()[:2])
        time.sleep(2.0)
        used = sum(proc.cpu_times()[:2]) - c0
        print(f"watcher CPU time over 2 s: {used * 1000:.1f} ms")
        assert used < 0.05  # woken only by other processes' events
    finally:
        p.kill()
        p.wait()
