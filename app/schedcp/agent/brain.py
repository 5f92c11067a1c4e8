"""What every brain gets and gives: one interface, so the loop does not care whether the offline
planner or Claude decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import Lesson, Metrics, Outcome, Plan, WorkloadProfile


class BudgetExceeded(Exception):
    """The optimization spent its budget; the loop stops before the next paid call."""


@dataclass
class PlanContext:
    """Everything Planning may use: the profile, the baseline, this run so far, the history."""

    profile: WorkloadProfile
    baseline: Metrics | None
    iteration: int
    outcomes: list[Outcome] = field(default_factory=list)  # this run, oldest first
    history: list[Lesson] = field(default_factory=list)  # earlier runs, oldest first
    best: Lesson | None = None
    antipatterns: list[Lesson] = field(default_factory=list)
    available: set[str] | None = None  # scheduler names the helper can run; None = unknown
    # when this workload has no win of its own: the similar earlier workload ``best`` is from
    borrowed_from: str = ""
    similarity: float = 0.0

    @property
    def goal(self) -> str:
        return self.profile.goal


class Brain(Protocol):
    name: str

    def plan(self, ctx: PlanContext) -> Plan | None:
        """The next configuration to try, or None when there is nothing worth trying."""

    def observe(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> None:
        """Feedback from Execution/Learning (a bandit updates its arms here)."""

    def reflect(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> str | None:
        """An optional note for the lesson (the Learning role's brain call)."""

    def accounting(self) -> dict[str, Any]:
        """Tokens and cost per role so far (empty for a free brain)."""
