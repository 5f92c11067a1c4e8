"""The jobs of a batch as it runs: which processes it forks or execs, and the CPU time each used.

A batch's jobs get their pids only when it runs, so a scheduler that starts the longest jobs
first (ljf) must learn their lengths from an earlier run and be told them as the jobs appear.
A job is recognised by its place in the batch, never by its name: the n-th child its parent
job forked, or the n-th start of the same command line. Runs of the same batch therefore give
the same keys to the same jobs, and a key seen before maps to the CPU time it needed then.

Events come from the proc connector (fork/exec/exit); CPU time is sampled from
``/proc/PID/stat`` only for the batch's own processes, and only while a run lasts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from . import procfs
from .events import ExecWatcher

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (its threads included, its children not)."""
    ticks = procfs.cpu_ticks(pid)
    return ticks * TICK_S if ticks >= 0 else None


class JobTracker:
    """Follows one batch's process tree. ``open()`` before the batch starts (so no fork is
    missed), ``follow(root_pid)`` once it has, ``stop()`` when it ended → {key: CPU seconds}.

    ``on_jobs({tgid: key})`` is called from the tracker's thread as jobs appear (or change
    key when they exec)."""

    def __init__(self, on_jobs: Callable[[dict[int, str]], None] | None = None,
                 sample_s: float = 0.25):
        self.on_jobs = on_jobs
        self.sample_s = sample_s
        self.keys: dict[int, str] = {}  # live tgid -> key
        self.cpu: dict[str, float] = {}  # key -> CPU seconds (last sample, or at exit)
        self._forks: dict[str, int] = defaultdict(int)
        self._execs: dict[str, int] = defaultdict(int)
        self._watcher: ExecWatcher | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> JobTracker:
        self._watcher = ExecWatcher(kinds=("fork", "exec", "exit"))
        self._watcher.open()
        return self

    def follow(self, root: int) -> None:
        self.keys[root] = "0"  # the batch command itself (its own exec keeps this key)
        self._thread = threading.Thread(target=self._loop, name="schedcp-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self._sample()
        return dict(self.cpu)

    # -- the thread --------------------------------------------------------------------------
    def _loop(self) -> None:
        assert self._watcher is not None
        next_sample = time.monotonic() + self.sample_s
        while not self._stop.is_set():
            try:  # asleep until events come or a sample is due: no periodic wake-ups
                events = self._watcher.poll(max(0.0, next_sample - time.monotonic()))
            except (OSError, ValueError):  # closed under us: the run is over
                return
            new: dict[int, str] = {}
            for ev in events:
                self._on_event(ev, new)
            if new and self.on_jobs is not None:
                with contextlib.suppress(Exception):  # a hint that fails must not stop tracking
                    self.on_jobs(new)
            if time.monotonic() >= next_sample:
                self._sample()
                next_sample = time.monotonic() + self.sample_s

    def _on_event(self, ev, new: dict[int, str]) -> None:
        if ev.kind == "fork" and ev.ppid in self.keys:
            parent = self.keys[ev.ppid]
            key = f"{parent}/{self._forks[parent]}"
            self._forks[parent] += 1
        elif ev.kind == "exec" and ev.tgid in self.keys and self.keys[ev.tgid] != "0":
            cmd = "\0".join(ev.cmdline)
            digest = hashlib.sha1(cmd.encode(), usedforsecurity=False).hexdigest()[:12]
            key = f"x{digest}#{self._execs[digest]}"
            self._execs[digest] += 1
        elif ev.kind == "exit" and ev.tgid in self.keys:
            key = self.keys.pop(ev.tgid)
            cpu = cpu_seconds(ev.tgid)  # a zombie still reads until it is reaped
            if cpu is not None:
                self.cpu[key] = max(cpu, self.cpu.get(key, 0.0))
            new.pop(ev.tgid, None)
            return
        else:
            return
        self.keys[ev.tgid] = new[ev.tgid] = key
        self.cpu.setdefault(key, 0.0)  # known even if it ends before a sample reads it

    def _sample(self) -> None:
        for tgid, key in list(self.keys.items()):
            cpu = cpu_seconds(tgid)
            if cpu is not None:
                self.cpu[key] = max(cpu, self.cpu.get(key, 0.0))
