"""The four roles. Each owns a narrow tool set and turns one artifact into the next:
Observation → WorkloadProfile (+ baseline Metrics) → Planning → Plan → Execution → Outcome →
Learning → Lesson. Only Execution touches the helper, only Learning writes the history."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..measure.effect import describe_effect
from ..measure.trials import IMPROVED, INVALID, Progress, StopRule, TrialRunner
from ..model import Lesson, Metrics, Outcome, Plan, WorkloadProfile
from .brain import Brain, PlanContext
from .executors import Executor
from .tools import AgentTools, ToolFailure, custom_name

DETERMINISTIC = ("input", "compile", "static", "kernel-verifier")  # same code, same verdict
# ... unless the stage was killed for time (the helper's words for compile and static): on a
# loaded host that is the load's verdict, not the code's
TIMED_OUT = "took longer than"


@dataclass
class Observation:
    tools: AgentTools
    executor: Executor

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
        ctx = PlanContext(profile, baseline, iteration, list(outcomes), repo.history(key),
                          repo.best(key), repo.antipatterns(key), available)
        if ctx.best is None:  # nothing won here yet: a similar earlier workload's best
            for other, score in repo.similar(profile.description, exclude=key):
                best = repo.best(other)
                if best is not None and not any(
                        a.policy == best.policy and a.tunables == best.tunables
                        for a in ctx.antipatterns):
                    ctx.best, ctx.borrowed_from, ctx.similarity = best, other, score
                    break
        return ctx


@dataclass
class Planning:
    brain: Brain

    def plan(self, ctx: PlanContext) -> Plan | None:
        return self.brain.plan(ctx)


@dataclass
class Execution:
    """verify → deploy (or switch, for packaged scx_*) → A/B trials against what ran before
    (:mod:`schedcp.measure.trials`) → keep the best live."""

    tools: AgentTools
    executor: Executor
    canary_s: float = 10.0
    best: tuple[Plan, float, dict] | None = None  # best plan so far, its gain, its evidence
    live: str = ""  # deployment id of the best, while it runs
    current: str = ""  # deployment being measured
    rule: StopRule | None = None  # None: StopRule.for_goal(goal)
    cancel: threading.Event | None = None
    on_progress: Callable[[Progress], None] | None = None
    context: dict[str, Any] = field(default_factory=dict)  # baseline scheduler, machine
    _again: Callable[[], str] | None = None  # deploys the candidate under trial once more

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
            args = {"name": plan.policy, "tunables": plan.tunables, "canary_s": self.canary_s,
                    "target_pids": pids}
            self._again = lambda: call("switch", args)["id"]
            return self._again(), None
        if kind == "custom":  # generated now, or promoted earlier (source in the repository)
            source = plan.source or call("get_policy", {"name": plan.policy}).get("source") or ""
            report = call("verify_source", {"source": source, "tunables": plan.tunables,
                                            "name": custom_name(source)})
        else:
            report = call("verify_policy", {"name": plan.policy, "tunables": plan.tunables})
        if not report["ok"]:
            return "", report
        args = {"token": report["token"], "canary_s": self.canary_s, "target_pids": pids}
        self._again = lambda: call("deploy", args)["id"]  # the token serves every B run
        return self._again(), None

    def _redeploy(self, plan: Plan) -> str:
        """The candidate again, for the next B run: its token while valid, else re-verified."""
        try:
            return self._again()
        except ToolFailure:
            dep_id, refusal = self._start(plan)
            if refusal is not None:
                raise ToolFailure("the plan no longer verifies", "Refused") from None
            return dep_id

    def baseline_context(self) -> dict[str, Any]:
        """What A runs under and on which machine: stored with every lesson's evidence."""
        if not self.context:
            from ..measure.machine import machine

            ctx = dict(machine())
            try:
                lkg = self.tools.call("helper_status").get("last_known_good") or {}
                ctx["baseline_scheduler"] = lkg.get("name") or "kernel default"
            except (ToolFailure, AttributeError):
                ctx["baseline_scheduler"] = "kernel default"
            self.context = ctx
        return self.context

    def execute(self, plan: Plan, goal: str, baseline: Metrics | None
                ) -> tuple[Outcome, ToolFailure | None]:
        """Deploy ``plan`` and run an A/B trial set against what ran before. ``baseline`` is
        the observation's warm-up run: recorded, never compared against."""
        context = self.baseline_context()
        try:
            dep_id, refusal = self._start(plan)
        except ToolFailure as e:
            return Outcome(plan, True, None, f"deploy failed: {e.kind}: {e}"), e
        if refusal is not None:
            stage = next((s for s in refusal["stages"] if s["verdict"] == "fail"), {})
            return Outcome(plan, False, refusal["failed_stage"],
                           stage.get("message", "refused")), None
        self.live = ""  # the new deployment replaced the previous best
        self.current = dep_id  # reverted by finish() if the measurement never completes
        canary_tripped: list[str] = []

        def switch(arm: str) -> None:
            if arm == "A":  # back to what ran before (the last-known-good, or the default)
                self.tools.call("revert", {"id": self.current,
                                           "reason": "A/B trial: baseline run"})
                self.current = ""
            else:
                self.current = self._redeploy(plan)

        def measure() -> Metrics:
            dep = self.current
            if dep:
                self.executor.hint_sink = lambda hints: self.tools.call(
                    "update_hints", {"id": dep, "hints": hints})
                self.executor.fork_sink = lambda parent, runtimes: self.tools.call(
                    "expect_forks", {"id": dep, "parent": parent, "runtimes": runtimes})
            try:
                m = self.executor.measure()
            finally:
                self.executor.hint_sink = self.executor.fork_sink = None
            if dep:
                try:
                    if self.tools.call("helper_status").get("deployment") != dep:
                        canary_tripped.append(dep)
                        self.current = ""
                        m.failed = m.failed or "the helper reverted it during the run (canary)"
                except ToolFailure:
                    pass
            return m

        metric = (baseline.primary_name(goal) if baseline else None) or "makespan_s"
        runner = TrialRunner(self.rule or StopRule.for_goal(goal), self.on_progress, self.cancel)
        try:
            trials = runner.run(measure, switch, metric)
        except ToolFailure as e:
            if self.current:
                self._revert(self.current, "A/B trials aborted")
                self.current = ""
            return Outcome(plan, True, None, f"trials aborted: {e.kind}: {e}"), e
        ev = trials.evidence(**context)
        if trials.decision == INVALID:
            if self.current:
                self._revert(self.current, "the workload fails under the baseline")
                self.current = ""
            return (Outcome(plan, True, None, trials.reason, dep_id, trials=ev, reverted=True),
                    ToolFailure(trials.reason, "WorkloadFailed"))
        ma, mb = trials.medians()
        outcome = Outcome(plan, True, None, f"{trials.decision}: {trials.reason}", dep_id,
                          Metrics(**{metric: ma}, source=f"median of {ev['n_a']} runs")
                          if ma is not None else baseline,
                          Metrics(**{metric: mb}, source=f"median of {ev['n_b']} runs")
                          if mb is not None else None, trials=ev)
        if canary_tripped:
            outcome.reverted = True
            outcome.message = "the helper reverted it during the measurement (canary)"
            return outcome, None
        gain = trials.improvement
        if (trials.decision == IMPROVED and gain is not None
                and (self.best is None or gain > self.best[1])):
            try:
                if not self.current:  # the set ended on a baseline run: candidate back
                    switch("B")
            except ToolFailure as e:
                return outcome, e
            self.best, self.live = (plan, gain, ev), self.current
            outcome.deployment_id = self.current
            outcome.message = f"new best ({describe_effect(ev)}); left running"
        else:
            if self.current:
                self._revert(self.current, "not better than the best so far")
            outcome.reverted = True
        self.current = ""
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
        plan, gain, evidence = self.best
        try:
            if not self.live:
                self.live, refusal = self._start(plan)
                if refusal is not None:
                    return {"kept": None, "error": "the best plan no longer verifies"}
            state = self.tools.call("keep", {"id": self.live})["state"]
        except ToolFailure as e:
            return {"kept": None, "error": str(e)}
        return {"kept": self.live, "state": state, "policy": plan.policy,
                "tunables": plan.tunables, "improvement": gain, "evidence": evidence}


@dataclass
class Learning:
    tools: AgentTools
    brain: Brain
    recorded: list[Lesson] = field(default_factory=list)

    @staticmethod
    def judge(outcome: Outcome, goal: str, error: ToolFailure | None) -> tuple[str, float | None]:
        """improved / regressed only when the A/B trials say so with confidence; a failed run
        under the candidate is a failure; anything else measured is inconclusive."""
        if error is not None:
            return "failed", None
        if not outcome.verified:
            return "refused", None
        score = outcome.improvement(goal)
        if outcome.reverted and outcome.message.startswith("the helper reverted"):
            return "failed", score
        if outcome.trials is None:  # measured without trials (an older caller): no verdict
            return "inconclusive", score
        decision = outcome.decision
        if decision in ("improved", "regressed", "failed"):
            return decision, score
        return "inconclusive", score

    def learn(self, ctx: PlanContext, outcome: Outcome, error: ToolFailure | None
              ) -> tuple[Lesson, bool]:
        """Returns the lesson and whether it went into the history. Failures of the machine
        (no sched_ext, no helper, polkit) and load-dependent trial-run refusals say nothing
        certain about the policy: kept out of it, so they never become antipatterns."""
        verdict, score = self.judge(outcome, ctx.goal, error)
        plan = outcome.plan
        policy = custom_name(plan.source) if plan.source else plan.policy
        note = outcome.message
        lesson = Lesson(ctx.profile.key, policy, dict(plan.tunables), verdict, score, note,
                        outcome.trials)
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
        if verdict == "refused" and TIMED_OUT in outcome.message:
            lesson.note = f"a stage ran out of time, not recorded: {lesson.note}"
            return lesson, False
        repo = self.tools.repository()
        # promote before recording: the lesson itself would be the incumbent it must beat
        if (plan.source and verdict == "improved" and score is not None
                and repo.promote(policy, plan.source, plan.rationale or "generated by the agent",
                                 ctx.profile.key, score)):
            lesson.note = f"{lesson.note}; promoted as {policy}"
        repo.record(lesson)
        repo.remember_workload(ctx.profile.key, ctx.profile.description)
        self.recorded.append(lesson)
        return lesson, True
