"""How the target workload is run and measured: pluggable, so the same loop optimizes a batch
command (judged by its makespan) or a running process (judged by its runqueue wait)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from ..model import Metrics, WorkloadProfile

log = logging.getLogger("schedcp.agent.executors")
HintSink = Callable[[dict[int, int]], None]  # tgid -> expected runtime ns (0 = forget)
ForkSink = Callable[[int, list[int]], None]  # parent pid, its children's runtimes by birth order


class Executor(Protocol):
    target_pids: list[int]
    hint_sink: HintSink | None  # set while a deployment that takes runtime hints is measured
    fork_sink: ForkSink | None  # ... and hints for children not yet born

    def observe(self, goal: str) -> tuple[WorkloadProfile, Metrics]:
        """The workload's profile and its baseline metrics under what runs now."""

    def measure(self) -> Metrics:
        """The metrics under whatever scheduler runs now."""


def _profile_or_fallback(pid: int, goal: str, argv: list[str], kind: str,
                         cwd: str | None = None) -> WorkloadProfile:
    """The profile of the running command; its identity is the command as given (resolved),
    not whatever process the sampler happened to see, so short and long runs share a key."""
    from ..analysis.identity import resolve_argv

    try:
        from ..analysis import profile

        prof = profile(pid, goal)
    except Exception:  # the process may be gone already, or analysis unavailable
        exe = argv[0] if argv else ""
        prof = WorkloadProfile(kind, goal, pid, [pid], exe=exe,
                               description=f"{kind} command {Path(exe).name}, goal {goal}")
    prof.cmdline = resolve_argv(argv, cwd)
    return prof


def _failure(rc: int, out, pattern: str | None) -> str:
    """Why a finished run does not count ("" when it does)."""
    if rc < 0:
        return f"killed by signal {-rc}"
    if rc != 0:
        return f"exit status {rc}"
    if pattern:
        out.seek(max(0, out.seek(0, os.SEEK_END) - 65536))
        text = out.read().decode("utf-8", "replace")
        if (m := re.search(pattern, text, re.MULTILINE)) is not None:
            return f"its output says it failed: {m.group(0)[:120]!r}"
    return ""


def _wait_for_a_child(p: subprocess.Popen, deadline: float) -> bool:
    """Whether the command has a child (its first job) before it exits or ``deadline``."""
    try:
        proc = psutil.Process(p.pid)
        while time.perf_counter() < deadline and p.poll() is None:
            if proc.children(recursive=True):
                return True
            time.sleep(0.05)
    except psutil.Error:  # gone
        pass
    return False


@dataclass
class BatchExecutor:
    """``optimize -- CMD``: run the command to completion; the metric is its makespan."""

    argv: list[str]
    cwd: str | None = None
    timeout: float | None = None
    profile_after_s: float = 0.3  # let the tree form before profiling it
    # a window that saw no job is taken again once the command forks one (until this long
    # after the start): an interpreter's start-up reads files and sleeps, and profiled then a
    # batch looks interactive (#13)
    profile_by_s: float = 8.0
    kind: str = "batch"  # the fallback kind when analysis cannot profile a short run
    learn_jobs: bool = True  # learn each job's CPU time (the proc connector) for runtime hints
    # a run whose output (stdout or stderr, its last 64 KiB) matches this regex failed
    failure_pattern: str | None = None
    target_pids: list[int] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    hint_sink: HintSink | None = None
    fork_sink: ForkSink | None = None
    job_cpu_s: dict[str, float] = field(default_factory=dict)  # job key -> CPU s, last run

    def _tracker(self, hinted: dict[int, int]):
        """A JobTracker that feeds learned runtimes of the jobs it sees to ``hint_sink``."""
        from ..analysis.jobs import JobTracker

        known, sink = dict(self.job_cpu_s), self.hint_sink

        def on_jobs(jobs: dict[int, str]) -> None:
            nonlocal sink
            hints = {tgid: int(known[key] * 1e9) for tgid, key in jobs.items()
                     if known.get(key, 0) > 0}
            if sink is None or not hints:
                return
            try:
                sink(hints)
                hinted.update(hints)
            except Exception as e:  # e.g. the scheduler has no hint map: stop trying
                log.info("runtime hints refused: %s", e)
                sink = None

        try:
            return JobTracker(on_jobs).open()
        except Exception as e:  # no proc connector (e.g. a sandbox): run without learning
            log.info("job tracking unavailable: %s", e)
            return None

    def _fork_runtimes(self) -> list[int]:
        """Learned runtimes (ns) of the command's own children, in birth order."""
        n = 1 + max((int(k[2:]) for k in self.job_cpu_s
                     if k.startswith("0/") and k[2:].isdigit()), default=-1)
        return [int(self.job_cpu_s.get(f"0/{i}", 0.0) * 1e9) for i in range(min(n, 512))]

    def _run(self, goal: str | None) -> tuple[Metrics, WorkloadProfile | None]:
        hinted: dict[int, int] = {}
        tracker = self._tracker(hinted) if self.learn_jobs else None
        # every run starts behind a barrier: the command's pid is known (and the hints of its
        # children are in place) before it runs, and every run is timed from the same point
        gate_r, gate_w = os.pipe()
        try:
            # the gate is the shim's stdin (dash redirects only single-digit fds)
            # a file, not a pipe: nobody has to drain it while the run goes on
            out = (tempfile.TemporaryFile() if self.failure_pattern  # noqa: SIM115
                   else open(os.devnull, "wb"))  # noqa: SIM115 - both closed after the run
            p = subprocess.Popen(["/bin/sh", "-c", 'read x; exec "$@" </dev/null',
                                  "schedcp-batch", *self.argv], cwd=self.cwd,
                                 stdin=gate_r, stdout=out, stderr=out)
        except BaseException:
            os.close(gate_w)
            raise
        finally:
            os.close(gate_r)
        self.target_pids = [p.pid]
        forks = self._fork_runtimes() if self.fork_sink is not None else []
        if forks and any(forks):
            try:
                self.fork_sink(p.pid, forks)
            except Exception as e:  # e.g. the scheduler takes no hints: run without
                log.info("fork hints refused: %s", e)
                forks = []
        if tracker is not None:
            tracker.follow(p.pid)
        t0 = time.perf_counter()
        os.write(gate_w, b"go\n")
        os.close(gate_w)
        prof: list[WorkloadProfile] = []
        if goal is not None:
            def sample() -> None:
                time.sleep(self.profile_after_s)
                first = _profile_or_fallback(p.pid, goal, self.argv, self.kind, self.cwd)
                # a window that saw only the command itself may have been its start-up:
                # once it forks its first job, profile the jobs instead
                if len(first.pids) < 2 and _wait_for_a_child(p, t0 + self.profile_by_s):
                    again = _profile_or_fallback(p.pid, goal, self.argv, self.kind, self.cwd)
                    first = again if again.features else first
                prof.append(first)
            t = threading.Thread(target=sample, daemon=True)
            t.start()
        failed = ""
        try:
            rc = p.wait(self.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
            failed = f"killed after the {self.timeout:g} s timeout"
        finally:
            jobs = tracker.stop() if tracker is not None else {}
        makespan = time.perf_counter() - t0
        failed = failed or _failure(rc, out, self.failure_pattern)
        out.close()
        self.target_pids = []  # gone: a canary must not watch a recycled pid
        if goal is not None:
            t.join()
        if hinted and self.hint_sink is not None:  # the pids are gone: free their map entries
            with contextlib.suppress(Exception):
                self.hint_sink(dict.fromkeys(hinted, 0))
        if forks and self.fork_sink is not None:
            with contextlib.suppress(Exception):
                self.fork_sink(p.pid, [])
        if jobs:
            self.job_cpu_s = jobs
        self.runs.append({"returncode": rc, "makespan_s": makespan, "jobs": len(jobs),
                          "hinted": len(hinted), "fork_hints": len(forks), "failed": failed})
        source = "makespan" + (f" (exit status {rc})" if rc else "")
        # a failed run keeps its time for the record, but Metrics.failed keeps it out of
        # every decision (a crash is often fast: it must never "win")
        return Metrics(makespan_s=makespan, seconds=makespan, source=source,
                       failed=failed), (prof[0] if prof else None)

    def observe(self, goal: str) -> tuple[WorkloadProfile, Metrics]:
        metrics, prof = self._run(goal)
        return prof, metrics

    def measure(self) -> Metrics:
        return self._run(None)[0]


@dataclass
class PidExecutor:
    """``optimize --pid PID``: a running workload; the metric is its runqueue wait."""

    pid: int
    seconds: float = 5.0
    target_pids: list[int] = field(default_factory=list)
    hint_sink: HintSink | None = None  # a running process's jobs are not batch jobs: unused
    fork_sink: ForkSink | None = None
    windowed: bool = False  # the app has a window a person looks at (the tray's app in front)
    game: bool = False  # and its .desktop entry (or Steam/Proton) says it is a game

    def observe(self, goal: str) -> tuple[WorkloadProfile, Metrics]:
        from ..analysis import profile

        prof = profile(self.pid, goal, windowed=self.windowed, game=self.game)
        self.target_pids = list(prof.pids or [self.pid])
        return prof, self.measure()

    def measure(self) -> Metrics:
        from ..analysis import measure

        return measure(self.target_pids or [self.pid], self.seconds)
