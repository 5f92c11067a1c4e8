"""The four roles. Each owns a narrow tool set and turns one artifact into the next:
Observation → WorkloadProfile (+ baseline Metrics) → Planning → Plan → Execution → Outcome →
Learning → Lesson. Only Execution touches the helper, only Learning writes the history."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..model import Lesson, Metrics, Outcome, Plan, WorkloadProfile
from .brain import Brain, PlanContext
from .executors import Executor
from .tools import AgentTools, ToolFailure, custom_name

IMPROVED, REGRESSED = 0.02, -0.05  # fraction of the primary metric: below 2 % is noise
DETERMINISTIC = ("input", "compile", "static", "kernel-verifier")  # same code, same verdict


@dataclass
class Observation:
    tools: AgentTools
    executor: Executor
    TOOLS = ("system_summary", "workload_profile", "details", "feedback")

    def observe(self, goal: str) -> tuple[WorkloadProfile, Metrics]:
        return self.executor.observe(goal)

    def context(self, profile: WorkloadProfile, baseline: Metrics, iteration: int,
                outcomes: list[Outcome]) -> PlanContext:
        """The history part of the context comes from the repository (read-only here)."""
        repo = self.tools.repository()
        key = profile.key
        try:  # the helper connects lazily: ask it even if nothing has used it yet
            available = {s["name"] for s in self.tools.helper().list_schedulers()
                         if s.get("available") or s.get("kind") == "bpf"}
        except Exception:  # no helper, or an old one: plan without the filter
            available = None
        return PlanContext(profile, baseline, iteration, list(outcomes), repo.history(key),
                           repo.best(key), repo.antipatterns(key), available)


@dataclass
class Planning:
    brain: Brain
    TOOLS = ("search_policies", "get_policy", "list_primitives", "workload_history",
             "verify_policy", "verify_source")

    def plan(self, ctx: PlanContext) -> Plan | None:
        return self.brain.plan(ctx)


@dataclass
class Execution:
    """verify → deploy (or switch, for packaged scx_*) → measure → keep the best live."""

    tools: AgentTools
    executor: Executor
    canary_s: float = 10.0
    best: tuple[Plan, float] | None = None  # best plan so far and its improvement
    live: str = ""  # deployment id of the best, while it runs
    current: str = ""  # deployment being measured
    TOOLS = ("verify_policy", "verify_source", "deploy", "switch", "keep", "revert",
             "feedback", "helper_status")

    def _kind(self, plan: Plan) -> str:
        if plan.source:
            return "custom"
        try:
            return self.tools.call("get_policy", {"name": plan.policy}).get("kind", "bpf")
        except ToolFailure:
            return "scx" if plan.policy.startswith("scx_") else "bpf"

    def _start(self, plan: Plan) -> tuple[str, dict | None]:
        """Verify and deploy; returns (deployment id, refusal report or None)."""
        kind = self._kind(plan)
        pids = list(self.executor.target_pids) or None
        call = self.tools.call  # every helper error becomes a ToolFailure
        if kind == "scx":
            return call("switch", {"name": plan.policy, "tunables": plan.tunables,
                                   "canary_s": self.canary_s, "target_pids": pids})["id"], None
        if kind == "custom":  # generated now, or promoted earlier (source in the repository)
            source = plan.source or call("get_policy", {"name": plan.policy}).get("source") or ""
            report = call("verify_source", {"source": source, "tunables": plan.tunables,
                                            "name": custom_name(source)})
        else:
            report = call("verify_policy", {"name": plan.policy, "tunables": plan.tunables})
        if not report["ok"]:
            return "", report
        return call("deploy", {"token": report["token"], "canary_s": self.canary_s,
                               "target_pids": pids})["id"], None

    def execute(self, plan: Plan, goal: str, baseline: Metrics | None
                ) -> tuple[Outcome, ToolFailure | None]:
        try:
            dep_id, refusal = self._start(plan)
        except ToolFailure as e:
            return Outcome(plan, True, None, f"deploy failed: {e.kind}: {e}"), e
        if refusal is not None:
            stage = next((s for s in refusal["stages"] if s["verdict"] == "fail"), {})
            return Outcome(plan, False, refusal["failed_stage"],
                           stage.get("message", "refused")), None
        if dep_id != self.live:
            self.live = ""  # the new deployment replaced the previous best
        self.current = dep_id  # reverted by finish() if the measurement never completes
        self.executor.hint_sink = lambda hints: self.tools.call(
            "update_hints", {"id": dep_id, "hints": hints})
        self.executor.fork_sink = lambda parent, runtimes: self.tools.call(
            "expect_forks", {"id": dep_id, "parent": parent, "runtimes": runtimes})
        try:
            after = self.executor.measure()
        finally:
            self.executor.hint_sink = self.executor.fork_sink = None
        self.current = ""
        outcome = Outcome(plan, True, None, "measured", dep_id, baseline, after)
        try:
            state = self.tools.call("helper_status")
            if state.get("deployment") != dep_id:
                outcome.reverted = True
                outcome.message = "the helper reverted it during the measurement (canary)"
                return outcome, None
        except ToolFailure:
            pass
        gain = outcome.improvement(goal)
        if gain is not None and gain >= IMPROVED and (self.best is None or gain > self.best[1]):
            self.best, self.live = (plan, gain), dep_id
            outcome.message = f"new best ({gain:+.1%}); left running"
        else:
            self._revert(dep_id, "not better than the best so far")
            outcome.reverted = True
        return outcome, None

    def _revert(self, dep_id: str, reason: str) -> None:
        with contextlib.suppress(ToolFailure):
            self.tools.call("revert", {"id": dep_id, "reason": reason})

    def finish(self, keep: bool) -> dict[str, Any]:
        """End of the run: keep the best (redeploying it if something replaced it), or revert."""
        if self.current and self.current != self.live:
            self._revert(self.current, "optimization ended during the measurement")
            self.current = ""
        if self.best is None or not keep:
            if self.live:
                self._revert(self.live, "optimization ended without keeping")
            return {"kept": None}
        plan, gain = self.best
        try:
            if not self.live:
                self.live, refusal = self._start(plan)
                if refusal is not None:
                    return {"kept": None, "error": "the best plan no longer verifies"}
            state = self.tools.call("keep", {"id": self.live})["state"]
        except ToolFailure as e:
            return {"kept": None, "error": str(e)}
        return {"kept": self.live, "state": state, "policy": plan.policy,
                "tunables": plan.tunables, "improvement": gain}


@dataclass
class Learning:
    tools: AgentTools
    brain: Brain
    recorded: list[Lesson] = field(default_factory=list)
    TOOLS = ("record_lesson", "workload_history")

    @staticmethod
    def judge(outcome: Outcome, goal: str, error: ToolFailure | None) -> tuple[str, float | None]:
        if error is not None:
            return "failed", None
        if not outcome.verified:
            return "refused", None
        score = outcome.improvement(goal)
        if outcome.reverted and outcome.message.startswith("the helper reverted"):
            return "failed", score
        if score is None:
            return "neutral", None
        if score >= IMPROVED:
            return "improved", score
        return ("regressed" if score <= REGRESSED else "neutral"), score

    def learn(self, ctx: PlanContext, outcome: Outcome, error: ToolFailure | None
              ) -> tuple[Lesson, bool]:
        """Returns the lesson and whether it went into the history. Failures of the machine
        (no sched_ext, no helper, polkit) and load-dependent trial-run refusals say nothing
        certain about the policy: kept out of it, so they never become antipatterns."""
        verdict, score = self.judge(outcome, ctx.goal, error)
        plan = outcome.plan
        policy = custom_name(plan.source) if plan.source else plan.policy
        note = outcome.message
        lesson = Lesson(ctx.profile.key, policy, dict(plan.tunables), verdict, score, note)
        extra = self.brain.reflect(ctx, outcome, lesson)
        if extra:
            lesson.note = f"{note}; {extra}"[:500]
        if error is not None and error.environmental:
            lesson.note = f"environment, not recorded: {lesson.note}"
            return lesson, False
        if verdict == "refused" and outcome.refused_at not in DETERMINISTIC:
            # the trial run's verdict depends on the host's load (the helper does not cache
            # it either): this run skips the plan, the history does not ban it for ever
            lesson.note = f"trial-run refusal, not recorded: {lesson.note}"
            return lesson, False
        repo = self.tools.repository()
        # promote before recording: the lesson itself would be the incumbent it must beat
        if (plan.source and verdict == "improved" and score is not None
                and repo.promote(policy, plan.source, plan.rationale or "generated by the agent",
                                 ctx.profile.key, score)):
            lesson.note = f"{lesson.note}; promoted as {policy}"
        repo.record(lesson)
        self.recorded.append(lesson)
        return lesson, True
