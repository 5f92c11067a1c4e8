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
