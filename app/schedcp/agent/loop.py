"""The optimization loop: observe once, then plan → execute → learn until the budget, the
goal or the user says stop. Every step becomes a JSON-able record (the history view and
``schedcp optimize`` print them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..measure.effect import describe_effect, held_text
from ..measure.trials import Progress, StopRule
from ..model import Outcome
from ..vocabulary import gain_text
from .brain import Brain, BudgetExceeded
from .executors import Executor
from .roles import Execution, Learning, Observation, Planning
from .tools import AgentTools, jsonable


@dataclass
class LoopConfig:
    goal: str = "throughput"
    max_iterations: int = 8
    patience: int = 3  # stop after this many iterations without a new best
    target: float | None = None  # stop once the improvement reaches this fraction
    canary_s: float = 10.0
    keep_best: bool = True
    # a second run on a known workload stops at once when the recorded best, tried first,
    # still gives at least this share of its recorded improvement (runs on a busy or
    # virtual machine vary by tens of percent)
    hold_fraction: float = 0.5
    # when A/B trial sets stop (None: StopRule.for_goal(goal): its time budget per candidate)
    rule: StopRule | None = None


@dataclass
class LoopResult:
    stop_reason: str  # budget | converged | target | exhausted | cancelled | environment | ...
    message: str
    steps: list[dict]
    best: dict | None
    iterations: int
    seconds: float
    accounting: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self)


class OptimizationLoop:
    def __init__(self, brain: Brain, tools: AgentTools, executor: Executor,
                 config: LoopConfig | None = None, cancel: threading.Event | None = None,
                 on_step: Callable[[dict], None] | None = None):
        self.brain, self.tools, self.executor = brain, tools, executor
        self.config = config or LoopConfig()
        self.cancel = cancel or threading.Event()
        self.on_step = on_step
        self.steps: list[dict] = []
        self.observation = Observation(tools, executor)
        self.planning = Planning(brain)
        self.execution = Execution(tools, executor, self.config.canary_s,
                                   rule=self.config.rule, cancel=self.cancel,
                                   on_progress=self._progress)
        self.learning = Learning(tools, brain)
        self._t0 = 0.0
        self._iteration = 0
        self._metric = "makespan_s"
        self._recheck = ""  # a second run's verdict on the stored best

    def _record(self, iteration: int, role: str, seconds: float, **data: Any) -> dict:
        step = {"iteration": iteration, "role": role, "t": round(time.time(), 3),
                "elapsed_s": round(time.perf_counter() - self._t0, 4),
                "seconds": round(seconds, 6), **jsonable(data)}
        acct = self.brain.accounting()
        if acct:
            step["cost_usd"] = acct.get("total", {}).get("cost_usd", 0.0)
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        return step

    def _progress(self, p: Progress) -> None:
        """A trial finished: reported to ``on_step`` as a "trial" record (not kept in steps:
        there are many, and the execution record holds them all)."""
        if self.on_step is not None:
            self.on_step({"iteration": self._iteration, "role": "trial", "t": round(time.time(), 3),
                          "elapsed_s": round(time.perf_counter() - self._t0, 4),
                          "run": p.run, "max_runs": p.max_runs, "arm": p.arm,
                          "value": p.value, "failed": p.failed, "line": p.line(self._metric),
                          "estimate": jsonable(p.estimate)})

    def run(self) -> LoopResult:
        self._t0 = time.perf_counter()
        cfg = self.config
        reason, message = "exhausted", ""
        iteration = 0
        outcomes: list[Outcome] = []
        best_gain: float | None = None
        since_best = 0
        try:
            if self.cancel.is_set():
                return self._end("cancelled", "cancelled before the first step", 0)
            t = time.perf_counter()
            profile, baseline = self.observation.observe(cfg.goal)
            profile.goal = cfg.goal
            self._metric = baseline.primary_name(cfg.goal) or "makespan_s"
            # the observation's run is the cold one and carries the profiler: it is the
            # discarded warm-up, every comparison below is an interleaved A/B trial set
            self._record(0, "observation", time.perf_counter() - t, profile=profile,
                         key=profile.key, baseline=baseline, warmup=True)
            for iteration in range(1, cfg.max_iterations + 1):
                if self.cancel.is_set():
                    reason, message = "cancelled", "cancelled by the user"
                    break
                t = time.perf_counter()
                ctx = self.observation.context(profile, baseline, iteration, outcomes)
                plan = self.planning.plan(ctx)
                self._record(iteration, "planning", time.perf_counter() - t,
                             brain=self.brain.name, plan=plan,
                             borrowed_from=ctx.borrowed_from or None)
                if plan is None:  # a model brain names a stop that is not "nothing to try"
                    reason, message = (getattr(self.brain, "no_plan", None)
                                       or ("exhausted", "the planner has nothing left to try"))
                    break
                if self.cancel.is_set():
                    reason, message = "cancelled", "cancelled by the user"
                    break
                t = time.perf_counter()
                self._iteration = iteration
                outcome, error = self.execution.execute(plan, cfg.goal, baseline)
                outcomes.append(outcome)
                self._record(iteration, "execution", time.perf_counter() - t, outcome=outcome,
                             improvement=outcome.improvement(cfg.goal),
                             decision=outcome.decision,
                             effect=describe_effect(outcome.trials) if outcome.trials else None,
                             error=(error.kind if error else None))
                t = time.perf_counter()
                lesson, stored = self.learning.learn(ctx, outcome, error)
                if error is None or not error.environmental:
                    self.brain.observe(ctx, outcome, lesson)
                self._record(iteration, "learning", time.perf_counter() - t, lesson=lesson,
                             recorded=stored)
                if error is not None and error.environmental:
                    reason = "environment"
                    message = (f"stopped: {error.kind}: {error}; the lesson was not stored "
                               "as an antipattern (the machine, not the policy, failed)")
                    break
                gain = outcome.improvement(cfg.goal) if lesson.outcome == "improved" else None
                if gain is not None and (best_gain is None or gain > best_gain):
                    best_gain, since_best = gain, 0
                else:
                    since_best += 1
                if cfg.target is not None and best_gain is not None and best_gain >= cfg.target:
                    reason = "target"
                    message = (f"reached the target: {gain_text(best_gain)} (wanted "
                               f"{gain_text(cfg.target)})")
                    break
                if iteration == 1 and self._is_best(ctx, plan):  # the stored win, re-measured
                    self._recheck = held_text(ctx.best.evidence, outcome.trials,
                                              self._known_best_held(ctx, plan, gain))
                if iteration == 1 and self._known_best_held(ctx, plan, gain):
                    assert ctx.best is not None
                    reason = "converged"
                    held = held_text(ctx.best.evidence, outcome.trials)
                    whose = (f"the similar workload {ctx.borrowed_from}" if ctx.borrowed_from
                             else "this workload")
                    message = f"the best known for {whose}: {held}"
                    break
                if since_best >= cfg.patience:
                    reason, message = "converged", (f"no new best in {cfg.patience} iterations")
                    break
            else:
                reason, message = "max_iterations", f"ran {cfg.max_iterations} iterations"
        except BudgetExceeded as e:
            reason, message = "budget", str(e)
        except Exception as e:  # a crash still ends cleanly: revert, record, report
            import traceback

            reason, message = "error", f"{type(e).__name__}: {e}"
            self._record(iteration, "error", 0.0, traceback=traceback.format_exc()[-4000:])
        return self._end(reason, message, iteration)

    @staticmethod
    def _is_best(ctx, plan) -> bool:
        best = ctx.best
        return bool(best is not None and best.outcome == "improved" and not plan.source
                    and plan.policy == best.policy and plan.tunables == best.tunables)

    def _known_best_held(self, ctx, plan, gain: float | None) -> bool:
        """Learning reused: the first plan was the recorded best and it still pays off."""
        best = ctx.best
        return bool(self._is_best(ctx, plan) and best.score and gain is not None
                    and gain >= self.config.hold_fraction * best.score)

    def _end(self, reason: str, message: str, iteration: int) -> LoopResult:
        t = time.perf_counter()
        kept = self.execution.finish(self.config.keep_best and reason != "cancelled")
        if not message:
            message = reason
        if self._recheck and "stored effect" not in message:  # it did not hold: say so
            message += f"; {self._recheck}"
        if kept.get("kept"):
            message += f"; kept {kept['policy']} ({describe_effect(kept.get('evidence'))})"
        self._record(iteration, "stop", time.perf_counter() - t, reason=reason,
                     message=message, kept=kept)
        return LoopResult(reason, message, list(self.steps), kept if kept.get("kept") else None,
                          iteration, time.perf_counter() - self._t0, self.brain.accounting())
