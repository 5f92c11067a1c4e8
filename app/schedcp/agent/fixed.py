"""One given plan through the whole loop: ``measure_plan`` (MCP, ``schedcp optimize --policy``)
and re-checks of a stored best (``schedcp optimize --recheck``).

Nothing here measures on its own: a :class:`FixedPlan` brain hands the loop exactly one plan,
so the warm-up, the interleaved A/B trial set, the decision, the lesson with its evidence and
the keep/revert at the end are the loop's own — the same code as every other caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..measure.effect import describe_effect
from ..model import Lesson, Outcome, Plan
from .brain import PlanContext
from .executors import Executor
from .loop import LoopConfig, LoopResult, OptimizationLoop
from .tools import _TUNABLES, GOALS, AgentTools, ToolFailure, ToolSpec, _obj, _p


@dataclass
class FixedPlan:
    """A brain with one plan: ``plan`` itself, or (``plan`` None) the workload's stored best —
    whichever it is, tried once."""

    plan_given: Plan | None = None
    name: str = "fixed"
    no_plan: tuple[str, str] | None = None
    _done: bool = field(default=False, repr=False)

    def plan(self, ctx: PlanContext) -> Plan | None:
        if self._done:
            self.no_plan = ("exhausted", "the plan was measured")
            return None
        self._done = True
        if self.plan_given is not None:
            return self.plan_given
        best = ctx.best
        if best is None or best.outcome != "improved":
            self.no_plan = ("exhausted", "nothing stored for this workload to re-check "
                            "(no earlier optimization kept an improvement)")
            return None
        where = f" (from the similar workload {ctx.borrowed_from})" if ctx.borrowed_from else ""
        return Plan(best.policy, dict(best.tunables), None,
                    f"re-check of the stored best{where}", self.name)

    def observe(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> None:
        pass

    def reflect(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> str | None:
        return None

    def accounting(self) -> dict[str, Any]:
        return {}


def measure_plan(tools: AgentTools, executor: Executor, plan: Plan | None, goal: str,
                 keep: bool = False, config: LoopConfig | None = None,
                 on_step: Callable[[dict], None] | None = None, cancel=None) -> LoopResult:
    """Warm-up, one A/B trial set of ``plan`` (None: the stored best) against what runs now,
    the lesson, then keep it (``keep`` and a significant improvement) or revert."""
    if plan is not None and not (plan.policy or plan.source):
        raise ToolFailure("a plan needs a policy name or a source", "InvalidArgs")
    cfg = config or LoopConfig()
    cfg.goal, cfg.max_iterations, cfg.keep_best = goal, 1, keep
    loop = OptimizationLoop(FixedPlan(plan), tools, executor, cfg, cancel, on_step)
    return loop.run()


def summary(result: LoopResult) -> dict[str, Any]:
    """What an outside agent needs from the run: the decision, its effect in words and in
    numbers, whether it was kept, and the workload key for later history lookups."""
    steps = result.steps
    obs = next((s for s in steps if s["role"] == "observation"), {})
    plan = next((s["plan"] for s in steps if s["role"] == "planning" and s.get("plan")), None)
    ex = next((s for s in steps if s["role"] == "execution"), None)
    learn = next((s for s in steps if s["role"] == "learning"), None)
    outcome = (ex or {}).get("outcome") or {}
    trials = outcome.get("trials")
    return {
        "workload_key": obs.get("key"),
        "plan": plan,
        "decision": (ex or {}).get("decision") or ("not measured" if ex is None else None),
        "effect": describe_effect(trials) if trials else None,
        "message": outcome.get("message") or result.message,
        "evidence": trials,
        "error": (ex or {}).get("error"),
        "lesson_recorded": bool(learn and learn.get("recorded")),
        "kept": result.best,
        "stop": {"reason": result.stop_reason, "message": result.message},
        "seconds": round(result.seconds, 3),
    }


# ---------------------------------------------------------------------------- the MCP tool
MEASURE_SPEC = ToolSpec(
    "measure_plan",
    "Measure one scheduler plan on a workload the way SchedCP's own loop does: a discarded "
    "warm-up run, then interleaved baseline/candidate runs until a 98 % interval on the ratio "
    "of the metric says improved, regressed or no measurable effect (inconclusive); a run "
    "that fails under the candidate is a failed trial, never a time. Records the lesson with "
    "its evidence. Give `policy` (+`tunables`) or a generated `source`, and `command` (a batch "
    "run to completion, metric: batch run time) or `pid` (a running app, metric: time "
    "waiting for a CPU). "
    "Without a plan it re-checks the workload's stored best.",
    _obj({"command": _p("array", "the workload's argv, run to completion each trial",
                        items={"type": "string"}, minItems=1),
          "pid": _p("integer", "instead of command: a running app's main process id",
                    minimum=1),
          "seconds": _p("number", "with pid: how long each trial samples", minimum=0.5,
                        maximum=60, default=3.0),
          "goal": _p("string", "what to optimize", enum=GOALS, default="throughput"),
          "policy": _p("string", "the policy to measure (omit, with no source: the stored "
                       "best, re-checked)"),
          "tunables": _TUNABLES,
          "source": _p("string", "generated BPF C instead of a policy name"),
          "fail_pattern": _p("string", "a regex: a run whose output matches it failed"),
          "max_pairs": _p("integer", "cap on baseline/candidate pairs (5-20; default: what "
                          "the goal's time budget allows)", minimum=5, maximum=20),
          "keep": _p("boolean", "keep the candidate running if it improved significantly",
                     default=False)}),
    ("mcp",), returns="decision (improved/regressed/inconclusive/failed/invalid), the effect "
    "in words ('batch run time 11.7 s -> 8.8 s, 25 % faster (19...31 %, 6+6 runs)' or 'no "
    "measurable effect'), the "
    "evidence (n, medians, interval), whether it was kept, the workload key",
    takes="minutes: 11-41 runs of the workload plus a verification (about a minute)",
    effects="deploys the candidate during the trials, reverts it at the end unless kept; "
    "records a lesson", destructive=True, idempotent=False,
    example={"command": ["make", "-j4"], "goal": "throughput", "policy": "ljf"})


def run_measure_tool(tools: AgentTools, args: dict[str, Any],
                     executor_factory: Callable[..., Executor] | None = None,
                     on_step: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """``measure_plan`` with the arguments checked (a bad one is InvalidArgs before anything
    runs) and the helper asked first (no sched_ext: NoSchedExt before the warm-up)."""
    from ..measure.trials import StopRule
    from .executors import BatchExecutor, PidExecutor

    props = MEASURE_SPEC.schema["properties"]
    unknown = set(args) - set(props)
    if unknown:
        raise ToolFailure(f"measure_plan has no argument {sorted(unknown)[0]!r}; it takes "
                          f"{', '.join(props)}", "InvalidArgs")
    command, pid = args.get("command"), args.get("pid")
    if bool(command) == (pid is not None):
        raise ToolFailure("give either command (a non-empty argv) or pid", "InvalidArgs")
    if command is not None and not (isinstance(command, list)
                                    and all(isinstance(a, str) and a for a in command)):
        raise ToolFailure("command must be a list of non-empty strings", "InvalidArgs")
    goal = args.get("goal") or "throughput"
    if goal not in GOALS:
        raise ToolFailure(f"goal must be one of {', '.join(GOALS)}", "InvalidArgs")
    policy, source = args.get("policy") or "", args.get("source") or ""
    if policy and source:
        raise ToolFailure("give policy or source, not both", "InvalidArgs")
    pattern = args.get("fail_pattern")
    if pattern:
        import re

        try:
            re.compile(pattern)
        except re.error as e:
            raise ToolFailure(f"fail_pattern is not a regex: {e}", "InvalidArgs") from None
    max_pairs = args.get("max_pairs")
    if max_pairs is not None and not (isinstance(max_pairs, int) and 5 <= max_pairs <= 20):
        raise ToolFailure("max_pairs must be an integer from 5 to 20", "InvalidArgs")
    if policy:
        tools.call("get_policy", {"name": policy})  # NotFound (with "did you mean") now
    status = tools.call("helper_status")
    if status.get("supported") is False:
        raise ToolFailure("this kernel has no sched_ext: nothing can be deployed here, so "
                          "nothing was run", "NoSchedExt")
    plan = (Plan("custom" if source else policy, dict(args.get("tunables") or {}),
                 source or None, "measure_plan", "mcp") if (policy or source) else None)
    if executor_factory is not None:
        executor = executor_factory(command=command, pid=pid, args=args)
    elif command:
        executor = BatchExecutor(list(command), failure_pattern=pattern)
    else:
        executor = PidExecutor(int(pid), float(args.get("seconds") or 3.0))
    rule = StopRule.for_goal(goal, **({"max_pairs": max_pairs} if max_pairs else {}))
    result = measure_plan(tools, executor, plan, goal, keep=bool(args.get("keep")),
                          config=LoopConfig(rule=rule), on_step=on_step)
    return summary(result)
