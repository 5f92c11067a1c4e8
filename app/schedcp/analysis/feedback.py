"""Tier 3: the numbers a deployment is judged by, for its target, from schedstat deltas.

Runqueue wait (time a task was runnable but not on a CPU) is what a CPU scheduler changes
most directly, for throughput and latency alike, so it is the common currency here.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

import psutil

from schedcp.model import Metrics

from . import procfs

Task = tuple[int, int]  # (pid, tid)


def _tree(pids: Sequence[int]) -> list[int]:
    out = dict.fromkeys(pids)
    for pid in pids:
        try:
            out.update(dict.fromkeys(c.pid for c in psutil.Process(pid).children(recursive=True)))
        except psutil.Error:
            continue
    return list(out)


def task_stats(pids: Sequence[int], descendants: bool = True) -> dict[Task, tuple[int, int, int]]:
    """(pid, tid) -> (run_ns, wait_ns, slices) for every live thread of ``pids`` (and tree)."""
    out = {}
    for pid in _tree(pids) if descendants else pids:
        for tid, st in procfs.thread_schedstats(pid).items():
            out[(pid, tid)] = st
    return out


def _delta(before: dict[Task, tuple[int, int, int]], after: dict[Task, tuple[int, int, int]]):
    run = wait = slices = 0
    for task, (r, w, s) in after.items():
        r0, w0, s0 = before.get(task, (0, 0, 0))  # new during the window: all of it counts
        run, wait, slices = run + max(r - r0, 0), wait + max(w - w0, 0), slices + max(s - s0, 0)
    return run, wait, slices


def measure(pids: list[int], seconds: float) -> Metrics:
    """Runqueue wait of ``pids`` and their descendants, in ms per second of wall time.

    Threads that exit inside the window take their deltas with them (an undercount), so
    keep windows short next to the tasks' lifetimes.
    """
    before = task_stats(pids)
    t0 = time.monotonic()
    time.sleep(seconds)
    after = task_stats(pids)
    dt = time.monotonic() - t0
    _, wait, _ = _delta(before, after)
    return Metrics(runqueue_wait_ms_per_s=round(wait / 1e6 / dt, 3), seconds=round(dt, 3),
                   source="schedstat")


def measure_command(argv: Sequence[str], timeout: float | None = None,
                    sample_s: float = 0.1) -> Metrics:
    """Run ``argv`` to completion: makespan, and runqueue wait sampled every ``sample_s``
    (each thread's last sample counts, so threads shorter than a sample are missed)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last: dict[Task, tuple[int, int, int]] = {}
    try:
        while proc.poll() is None:
            last.update(task_stats([proc.pid]))
            if timeout is not None and time.monotonic() - t0 > timeout:
                raise subprocess.TimeoutExpired(list(argv), timeout)
            time.sleep(sample_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    makespan = time.monotonic() - t0
    _, wait, _ = _delta({}, last)
    return Metrics(makespan_s=round(makespan, 3),
                   runqueue_wait_ms_per_s=round(wait / 1e6 / makespan, 3),
                   seconds=round(makespan, 3), source=f"schedstat sampled every {sample_s}s")
