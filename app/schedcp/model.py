"""The artifacts that flow one way through the agent loop:
detect → analyse (SystemSummary, WorkloadProfile, Metrics) → plan (Plan) → verify/deploy
(Outcome) → learn (Lesson). Plain dataclasses with JSON round-trips, so every step can be
recorded in the history and handed to any brain (offline planner, Claude, an MCP client).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

KINDS = ("game", "build", "batch", "interactive", "media", "idle")
GOALS = ("responsiveness", "throughput", "battery", "balanced")


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

    @property
    def key(self) -> str:
        """Identity of a *kind of* workload for the history: kind, goal and executable."""
        return f"{self.kind}:{self.goal}:{self.exe.rsplit('/', 1)[-1]}"

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

    def primary(self, goal: str) -> float | None:
        """The number the goal cares about most (lower is better)."""
        order = {
            "throughput": ("makespan_s", "runqueue_wait_ms_per_s"),
            "responsiveness": ("wake_p99_ms", "runqueue_wait_ms_per_s", "makespan_s"),
        }.get(goal, ("makespan_s", "runqueue_wait_ms_per_s", "wake_p99_ms"))
        for name in order:
            value = getattr(self, name)
            if value is not None:
                return value
        return None

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
    before: Metrics | None = None
    after: Metrics | None = None
    reverted: bool = False

    def improvement(self, goal: str) -> float | None:
        """Fractional gain of the goal's primary metric (0.25 = 25 % better)."""
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
    outcome: str  # "improved" | "neutral" | "regressed" | "refused" | "failed"
    score: float | None  # improvement fraction, when measured
    note: str = ""
