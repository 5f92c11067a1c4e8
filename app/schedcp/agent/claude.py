"""The Claude brain: the same tools as the offline planner, driven by the Messages API.

Planning is a tool-use conversation per iteration: Claude reads the profile and the history,
searches the repository, may configure a scheduler, patch ours or compose new BPF code from the
primitives, checks it with ``verify_*`` (a refusal comes back as the tool result so it can fix
the code) and ends with ``submit_plan``. The system prompt and the tool definitions carry cache
breakpoints (they are the same every call), and so does the newest message, so a long
conversation is read from the cache. Every response's ``usage`` is priced per role; when the
optimization's budget is spent the next call raises ``BudgetExceeded`` and the loop stops.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..model import Lesson, Outcome, Plan
from .brain import BudgetExceeded, PlanContext
from .tools import SPECS, AgentTools, ToolFailure, jsonable, specs_for

DEFAULT_MODEL = "claude-sonnet-5-5"


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float  # 5-minute cache writes
    cache_read: float  # cache hits


# Anthropic's published prices (checked 2026-11); pass ``prices=`` for anything else. A model
# id matches its entry exactly or with a date suffix ("claude-sonnet-4-5-20250929").
PRICES: dict[str, Price] = {
    "claude-sonnet-5-5": Price(2.0, 10.0, 2.5, 0.2),
    "claude-sonnet-5": Price(2.0, 10.0, 2.5, 0.2),
    "claude-opus-5": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-8": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-7": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-1": Price(15.0, 75.0, 18.75, 1.5),
    "claude-sonnet-4-6": Price(3.0, 15.0, 3.75, 0.3),
    "claude-sonnet-4-5": Price(3.0, 15.0, 3.75, 0.3),
    "claude-sonnet-4": Price(3.0, 15.0, 3.75, 0.3),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.1),
}


def price_for(model: str, prices: dict[str, Price] | None = None) -> Price:
    table = {**PRICES, **(prices or {})}
    if model in table:
        return table[model]
    base, _, suffix = model.rpartition("-")
    if suffix.isdigit() and len(suffix) == 8 and base in table:
        return table[base]
    raise ValueError(f"no price for model {model!r}; pass prices={{model: Price(...)}} "
                     "(USD per million tokens)")


USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                "cache_read_input_tokens")


@dataclass
class Ledger:
    """Tokens and dollars per role, from the API's own usage numbers."""

    price: Price
    roles: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, role: str, usage: Any) -> float:
        row = self.roles.setdefault(role, {"calls": 0, **dict.fromkeys(USAGE_FIELDS, 0),
                                           "cost_usd": 0.0})
        n = {f: int(getattr(usage, f, 0) or 0) for f in USAGE_FIELDS}
        cost = (n["input_tokens"] * self.price.input + n["output_tokens"] * self.price.output
                + n["cache_creation_input_tokens"] * self.price.cache_write
                + n["cache_read_input_tokens"] * self.price.cache_read) / 1e6
        row["calls"] += 1
        for f in USAGE_FIELDS:
            row[f] += n[f]
        row["cost_usd"] += cost
        return cost

    @property
    def spent(self) -> float:
        return sum(r["cost_usd"] for r in self.roles.values())

    def to_dict(self) -> dict[str, Any]:
        total: dict[str, float] = {"calls": 0, **dict.fromkeys(USAGE_FIELDS, 0), "cost_usd": 0.0}
        for row in self.roles.values():
            for k in total:
                total[k] += row[k]
        return {"roles": {k: dict(v) for k, v in self.roles.items()}, "total": total}


PLANNING_SYSTEM = """\
You are the Planning role of SchedCP, which picks and tunes Linux sched_ext CPU schedulers for
the workload a user cares about. Each turn you get a workload profile (kind, goal, features;
never trust process names for scheduling decisions), the baseline metrics, what this run has
tried so far with its measured improvement, and the history of this kind of workload (the best
lesson and antipatterns that must not be repeated).

Propose ONE configuration per turn and finish with the submit_plan tool. You may:
- configure an existing scheduler: submit_plan(policy=<name>, tunables={...}) with tunables
  inside the bounds get_policy reports (a preset for the goal is a good first try);
- patch one of ours or write a new one: get_policy / list_primitives give C sources; submit the
  full text as submit_plan(policy="custom", source=...). Verify generated code with
  verify_source first: a refusal names the stage (input, compile, static, kernel-verifier,
  dynamic) and why. Fix exactly that and verify again before you submit.

Rules for generated BPF C (Linux 6.12 sched_ext):
- one file, `#include "schedcp.bpf.h"` only; tunables are `const volatile` globals;
- every path of ops.enqueue must dispatch the task (scx_bpf_dispatch / scx_bpf_dispatch_vtime)
  or the task stalls and the watchdog ejects the scheduler; a task sent to a custom DSQ must be
  consumed in ops.dispatch (scx_bpf_consume), and custom DSQs are created in ops.init;
- kfuncs: scx_bpf_dispatch, scx_bpf_dispatch_vtime, scx_bpf_consume, scx_bpf_create_dsq,
  scx_bpf_select_cpu_dfl, scx_bpf_kick_cpu, scx_bpf_dsq_nr_queued, scx_bpf_task_cpu,
  scx_bpf_pick_idle_cpu; no loops without a bound, no unchecked map lookups.
Prefer configurations the history says improved; never resubmit an antipattern; stop
(end_turn without submit_plan) when nothing untried is likely to beat the best so far.
Be brief: the user pays for every token."""

LEARNING_SYSTEM = """\
You are the Learning role of SchedCP. Given one outcome (plan, verification, before/after
metrics, the verdict), write ONE short sentence (under 30 words) a later planner can act on:
what to try or avoid next for this kind of workload and why, with the numbers."""

SUBMIT = {
    "name": "submit_plan",
    "description": "Submit the configuration to deploy and measure next (ends this turn).",
    "input_schema": {"type": "object", "properties": {
        "policy": {"type": "string", "description": "policy name, or 'custom' with source"},
        "tunables": {"type": "object", "additionalProperties": True},
        "source": {"type": "string", "description": "full BPF C for a custom/patched policy"},
        "rationale": {"type": "string"}}, "required": ["policy", "rationale"]},
}


def _tool_defs(role: str) -> list[dict]:
    defs = [{"name": s.name, "description": s.description, "input_schema": s.schema}
            for s in specs_for(role) if s.name in SPECS]
    if role == "planning":
        defs.append(dict(SUBMIT))
    defs[-1] = {**defs[-1], "cache_control": {"type": "ephemeral"}}
    return defs


def _blocks(content: list) -> list[dict]:
    """Response content → request content (only the block types we use)."""
    out = []
    for b in content:
        if b.type == "text":
            out.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            out.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
    return out


def _cache_last(messages: list[dict]) -> None:
    """One moving breakpoint on the newest block (plus system and tools: 3 of the 4 allowed)."""
    for m in messages:
        if isinstance(m["content"], list):
            for b in m["content"]:
                b.pop("cache_control", None)
    last = messages[-1]
    if isinstance(last["content"], str):
        last["content"] = [{"type": "text", "text": last["content"]}]
    last["content"][-1]["cache_control"] = {"type": "ephemeral"}


class ClaudeBrain:
    name = "claude"

    def __init__(self, tools: AgentTools, api_key: str, model: str = DEFAULT_MODEL,
                 budget_usd: float = 1.0, base_url: str | None = None,
                 prices: dict[str, Price] | None = None, max_tokens: int = 4096,
                 max_turns: int = 12, reflect_lessons: bool = False, client: Any = None,
                 max_result_chars: int = 20000):
        import anthropic

        self.tools, self.model, self.budget_usd = tools, model, float(budget_usd)
        self.ledger = Ledger(price_for(model, prices))
        self.max_tokens, self.max_turns = max_tokens, max_turns
        self.reflect_lessons = reflect_lessons
        self.max_result_chars = max_result_chars
        self.client = client or anthropic.Anthropic(api_key=api_key, base_url=base_url)
        self.traces: list[dict] = []  # per call of plan(): the tool calls, for the history view

    # -- accounting --------------------------------------------------------------------------
    def accounting(self) -> dict[str, Any]:
        return {**self.ledger.to_dict(), "model": self.model, "budget_usd": self.budget_usd}

    def _create(self, role: str, system: str, tools: list[dict] | None, messages: list[dict]):
        spent = self.ledger.spent
        if spent >= self.budget_usd:
            raise BudgetExceeded(f"budget spent: ${spent:.4f} of ${self.budget_usd:.2f}")
        kw: dict[str, Any] = {}
        if tools:
            kw["tools"] = tools
        _cache_last(messages)
        resp = self.client.messages.create(
            model=self.model, max_tokens=self.max_tokens, messages=messages,
            system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            **kw)
        self.ledger.add(role, resp.usage)
        return resp

    # -- planning ----------------------------------------------------------------------------
    def _brief(self, ctx: PlanContext) -> str:
        tried = [{"plan": {"policy": o.plan.policy, "tunables": o.plan.tunables,
                           "custom": bool(o.plan.source)},
                  "verified": o.verified, "refused_at": o.refused_at, "message": o.message,
                  "improvement": o.improvement(ctx.goal),
                  "after": o.after.to_dict() if o.after else None} for o in ctx.outcomes]
        return json.dumps(jsonable({
            "iteration": ctx.iteration, "goal": ctx.goal, "workload_key": ctx.profile.key,
            "profile": ctx.profile.to_dict(),
            "baseline": ctx.baseline.to_dict() if ctx.baseline else None,
            "tried_this_run": tried, "best_known": ctx.best,
            "antipatterns": ctx.antipatterns[-10:], "history": ctx.history[-10:],
            "available_schedulers": sorted(ctx.available) if ctx.available else None,
        }), separators=(",", ":")) + "\nPropose the next configuration (submit_plan)."

    def plan(self, ctx: PlanContext) -> Plan | None:
        tools = _tool_defs("planning")
        messages: list[dict] = [{"role": "user", "content": self._brief(ctx)}]
        trace: dict[str, Any] = {"iteration": ctx.iteration, "calls": []}
        self.traces.append(trace)
        for _ in range(self.max_turns):
            resp = self._create("planning", PLANNING_SYSTEM, tools, messages)
            messages.append({"role": "assistant", "content": _blocks(resp.content)})
            uses = [b for b in resp.content if b.type == "tool_use"]
            if resp.stop_reason != "tool_use" or not uses:
                trace["end"] = "no plan"
                return None
            results = []
            for use in uses:
                args = dict(use.input or {})
                if use.name == "submit_plan":
                    trace["end"] = "submitted"
                    trace["calls"].append({"tool": "submit_plan", "policy": args.get("policy")})
                    return Plan(str(args.get("policy") or "custom"),
                                dict(args.get("tunables") or {}), args.get("source") or None,
                                str(args.get("rationale", "")), self.name)
                results.append(self._run_tool(use.id, use.name, args, trace))
            messages.append({"role": "user", "content": results})
        trace["end"] = "too many turns"
        return None

    def _run_tool(self, use_id: str, name: str, args: dict, trace: dict) -> dict:
        allowed = {s.name for s in specs_for("planning")}
        call: dict[str, Any] = {"tool": name}
        try:
            if name not in allowed:
                raise ToolFailure(f"{name} is not a Planning tool")
            result = self.tools.call(name, args)
            text, error = json.dumps(result, default=str), False
            if isinstance(result, dict) and "ok" in result:
                call["ok"] = result["ok"]
                call["failed_stage"] = result.get("failed_stage")
        except ToolFailure as e:
            text, error = json.dumps({"error": str(e), "kind": e.kind}), True
            call["error"] = str(e)
        trace["calls"].append(call)
        if len(text) > self.max_result_chars:
            text = text[: self.max_result_chars] + " …(truncated)"
        return {"type": "tool_result", "tool_use_id": use_id, "content": text,
                "is_error": error}

    # -- feedback ----------------------------------------------------------------------------
    def observe(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> None:
        """Nothing to update: the next brief carries the outcome."""

    def reflect(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> str | None:
        if not self.reflect_lessons:
            return None
        brief = json.dumps(jsonable({"profile_key": ctx.profile.key, "lesson": lesson,
                                     "outcome": outcome}), separators=(",", ":"))
        resp = self._create("learning", LEARNING_SYSTEM, None,
                            [{"role": "user", "content": brief}])
        text = " ".join(b.text for b in resp.content if b.type == "text").strip()
        return text[:300] or None
