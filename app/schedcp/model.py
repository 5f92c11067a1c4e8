"""The artifacts that flow one way through the agent loop:
detect → analyse (SystemSummary, WorkloadProfile, Metrics) → plan (Plan) → verify/deploy
(Outcome) → learn (Lesson). Plain dataclasses with JSON round-trips, so every step can be
recorded in the history and handed to any brain (offline planner, Claude, an MCP client).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

KINDS = ("game", "build", "batch", "interactive", "media", "idle")


def _from_dict(cls, data: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ProcessInfo:
    pid: int
    comm: str
    exe: str = ""
    cmdline: list[str] = field(default_factory=list)
    ppid: int = 0
    cpu_percent: float = 0.0  # of one CPU, over the sampling window
    threads: int = 1
    nice: int = 0


@dataclass
class SystemSummary:
    """Tier 1: cheap, always available."""

    ncpus: int
    load: tuple[float, float, float]
    psi_cpu_some_avg10: float | None  # None when the kernel has no PSI
    top: list[ProcessInfo]
    kind: str  # one of KINDS
    confidence: float  # 0..1
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorkloadProfile:
    """What the planner sees of the target: its kind, its tasks, and numbers, never names."""

    kind: str
    goal: str
    root_pid: int
    pids: list[int]
    exe: str = ""
    nthreads: int = 1
    features: dict[str, float] = field(default_factory=dict)  # cpu_util, runnable, wait_frac…
    description: str = ""  # a sentence used as the retrieval query
    cmdline: list[str] = field(default_factory=list)  # the command as started (its identity)

    @property
    def key(self) -> str:
        """Identity of a workload for the history: goal + what the command runs (resolved
        executable, the script of an interpreter, the shape of its arguments), the same for
        the same command whatever the run's length or the classification; see
        :mod:`schedcp.analysis.identity`. Without a command line: kind, goal, executable."""
        from .analysis.identity import workload_key

        return workload_key(self.goal, self.cmdline, self.exe, self.kind)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadProfile:
        return _from_dict(cls, data)


@dataclass
class Metrics:
    """Tier 3 feedback: what a deployment is judged by. Lower is better for every field."""

    makespan_s: float | None = None
    runqueue_wait_ms_per_s: float | None = None  # target's wait per second of wall time
    wake_p99_ms: float | None = None
    seconds: float = 0.0  # measurement window
    source: str = ""  # how it was measured
    failed: str = ""  # why this run does not count (non-zero exit, killed, output says so)

    def primary_name(self, goal: str) -> str | None:
        """Which field the goal cares about most, among those measured."""
        order = {
            "throughput": ("makespan_s", "runqueue_wait_ms_per_s"),
            "responsiveness": ("wake_p99_ms", "runqueue_wait_ms_per_s", "makespan_s"),
        }.get(goal, ("makespan_s", "runqueue_wait_ms_per_s", "wake_p99_ms"))
        return next((n for n in order if getattr(self, n) is not None), None)

    def primary(self, goal: str) -> float | None:
        """The number the goal cares about most (lower is better)."""
        name = self.primary_name(goal)
        return None if name is None else getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        return _from_dict(cls, data)


@dataclass
class Plan:
    """Planning's output: which scheduler, with which tunables, and why."""

    policy: str  # a policy name from the repository, or "custom"
    tunables: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # generated/edited BPF C for "custom"
    rationale: str = ""
    brain: str = ""  # "offline" | "claude" | ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return _from_dict(cls, data)


@dataclass
class Outcome:
    """Execution's output: what the verifier said, what ran, what it measured."""

    plan: Plan
    verified: bool
    refused_at: str | None = None  # verifier stage that stopped it
    message: str = ""
    deployment_id: str = ""
    before: Metrics | None = None  # the baseline's median over the trial set
    after: Metrics | None = None  # the candidate's median
    reverted: bool = False
    trials: dict[str, Any] | None = None  # TrialSet.evidence(): decision, n, interval, ...

    @property
    def decision(self) -> str:
        """The A/B trials' decision (improved, regressed, inconclusive, failed, invalid, ...)."""
        return (self.trials or {}).get("decision", "")

    def improvement(self, goal: str) -> float | None:
        """Fractional gain of the goal's primary metric (0.25 = 25 % better): the trials'
        ratio estimate when there are trials, else before vs after."""
        if self.trials and self.trials.get("ratio") is not None:
            return 1.0 - float(self.trials["ratio"])
        if not (self.before and self.after):
            return None
        b, a = self.before.primary(goal), self.after.primary(goal)
        if not b or a is None:
            return None
        return (b - a) / b


@dataclass
class Lesson:
    """Learning's output, stored in the policy repository's history."""

    workload_key: str
    policy: str
    tunables: dict[str, Any]
    # "improved" | "regressed" (both significant) | "inconclusive" | "refused" | "failed";
    # "neutral" only in stores from before A/B trials
    outcome: str
    score: float | None  # improvement fraction (ratio estimate), when measured
    note: str = ""
    # the trial set behind the verdict: n, medians, spread, interval, units, baseline
    # scheduler, kernel, CPU; None for refusals and for lessons migrated from single runs
    evidence: dict[str, Any] | None = None
