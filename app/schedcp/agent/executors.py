"""How the target workload is run and measured: pluggable, so the same loop optimizes a batch
command (judged by its makespan) or a running process (judged by its runqueue wait)."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..model import Metrics, WorkloadProfile


class Executor(Protocol):
    target_pids: list[int]

    def observe(self, goal: str) -> tuple[WorkloadProfile, Metrics]:
        """The workload's profile and its baseline metrics under what runs now."""

    def measure(self) -> Metrics:
        """The metrics under whatever scheduler runs now."""


def _profile_or_fallback(pid: int, goal: str, argv: list[str], kind: str) -> WorkloadProfile:
    try:
        from ..analysis import profile

        return profile(pid, goal)
    except Exception:  # the process may be gone already, or analysis unavailable
        exe = argv[0] if argv else ""
        return WorkloadProfile(kind, goal, pid, [pid], exe=exe,
                               description=f"{kind} command {Path(exe).name}, goal {goal}")


@dataclass
class BatchExecutor:
    """``optimize -- CMD``: run the command to completion; the metric is its makespan."""

    argv: list[str]
    cwd: str | None = None
    timeout: float | None = None
    profile_after_s: float = 0.3  # let the tree form before profiling it
    kind: str = "batch"  # the fallback kind when analysis cannot profile a short run
    target_pids: list[int] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)

    def _run(self, goal: str | None) -> tuple[Metrics, WorkloadProfile | None]:
        t0 = time.perf_counter()
        p = subprocess.Popen(self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.target_pids = [p.pid]
        prof: list[WorkloadProfile] = []
        if goal is not None:
            def sample() -> None:
                time.sleep(self.profile_after_s)
                prof.append(_profile_or_fallback(p.pid, goal, self.argv, self.kind))
            t = threading.Thread(target=sample, daemon=True)
            t.start()
        try:
            rc = p.wait(self.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise
        makespan = time.perf_counter() - t0
        self.target_pids = []  # gone: a canary must not watch a recycled pid
        if goal is not None:
            t.join()
        self.runs.append({"returncode": rc, "makespan_s": makespan})
        source = "makespan" + (f" (exit status {rc})" if rc else "")
        return Metrics(makespan_s=makespan, seconds=makespan, source=source), (
            prof[0] if prof else None)

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

    def observe(self, goal: str) -> tuple[WorkloadProfile, Metrics]:
        from ..analysis import profile

        prof = profile(self.pid, goal)
        self.target_pids = list(prof.pids or [self.pid])
        return prof, self.measure()

    def measure(self) -> Metrics:
        from ..analysis import measure

        return measure(self.target_pids or [self.pid], self.seconds)
