"""The kernel-filtered proc connector watcher: exec and whole-process exits only."""

from __future__ import annotations

import select
import subprocess
import sys
import time

from schedcp.desktop.procwatch import ProcWatch

CHILD = r'''
import os, threading, time
ts = [threading.Thread(target=time.sleep, args=(0.01,)) for _ in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print(os.getpid(), pid, flush=True)
'''


def test_exec_and_process_exits_only():
    """A child with 8 threads and a forked (never exec'd) grandchild: its exec and exit, the
    grandchild's exit, nothing for the threads."""
    with ProcWatch() as w:
        p = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           check=True)
        child, forked = map(int, p.stdout.split())
        events = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
                e.kind == "exit" and e.pid == child for e in events):
            if select.select([w.fileno()], [], [], 0.2)[0]:
                events += w.read()
        assert [e.kind for e in events if e.pid == child] == ["exec", "exit"]
        assert [e.kind for e in events if e.pid == forked] == ["exit"]
        assert w.dropped == 0
    assert w.sock is None


def test_thread_exits_are_filtered_in_the_kernel():
    import threading

    with ProcWatch() as w:
        ts = [threading.Thread(target=time.sleep, args=(0.001,)) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        time.sleep(0.1)
        own = [e for e in w.read() if e.pid == __import__("os").getpid()]
        assert own == []  # 20 thread exits of this process: not one event


def _collect(w: ProcWatch, until, timeout: float = 5.0) -> list:
    events: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(events):
        if select.select([w.fileno()], [], [], 0.1)[0]:
            events += w.read()
    return events


def test_exits_narrowed_to_some_processes():
    """watch_exits: every exec still comes, but only the exits of the given processes; the
    filter can be replaced while open, and None brings back all process exits."""
    from schedcp.desktop.procwatch import FILTER, MAX_EXIT_PIDS, exit_filter

    assert exit_filter(range(1, MAX_EXIT_PIDS + 2)) == FILTER  # too many: all exits
    a = subprocess.Popen(["sleep", "30"])
    b = subprocess.Popen(["sleep", "30"])
    try:
        with ProcWatch(exit_pids={a.pid}) as w:
            t = subprocess.Popen(["true"])
            t.wait()
            b.kill()
            b.wait()
            a.kill()
            a.wait()
            ev = _collect(w, lambda es: any(e.kind == "exit" and e.pid == a.pid for e in es))
            exits = {e.pid for e in ev if e.kind == "exit"}
            assert a.pid in exits and not exits & {b.pid, t.pid}, ev
            assert any(e.kind == "exec" and e.pid == t.pid for e in ev), ev

            c = subprocess.Popen(["sleep", "30"])
            w.watch_exits({c.pid})
            c.kill()
            c.wait()
            assert _collect(w, lambda es: any(e.kind == "exit" and e.pid == c.pid for e in es))

            w.watch_exits(None)
            t = subprocess.Popen(["true"])
            t.wait()
            ev = _collect(w, lambda es: any(e.kind == "exit" and e.pid == t.pid for e in es))
            assert [e.kind for e in ev if e.pid == t.pid] == ["exec", "exit"]
    finally:
        for p in (a, b):
            p.kill()
            p.wait()
