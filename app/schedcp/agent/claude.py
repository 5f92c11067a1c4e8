"""The Claude brain: the same tools as the offline planner, driven by the Messages API.

Planning is a tool-use conversation per iteration: Claude reads the profile and the history,
searches the repository, may configure a scheduler, patch ours or compose new BPF code from the
primitives, checks it with ``verify_*`` (a refusal comes back as the tool result so it can fix
the code; a pass comes back with a handle) and ends with ``submit_plan``, naming generated code
by that handle instead of sending it twice. Current models think: thinking and
redacted-thinking blocks are passed back verbatim (the API checks their signatures), the effort
is set deliberately, and a ``max_tokens`` or ``pause_turn`` stop is handled and named rather
than read as "nothing to try". The system prompt and the tool definitions carry cache
breakpoints (they are the same every call), and so does the newest message, so a long
conversation is read from the cache. Every response's ``usage`` is priced per role; when the
optimization's (or the iteration's) budget is spent the next call is not made.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..model import Lesson, Outcome, Plan
from ..pricing import DEFAULT_MODEL, PRICES, Price, price_for
from .brain import BudgetExceeded, PlanContext
from .prompts import LEARNING_SYSTEM, PLANNING_SYSTEM
from .tools import SPECS, AgentTools, ToolFailure, fit_result, jsonable, specs_for

log = logging.getLogger("schedcp.agent")

__all__ = ["DEFAULT_MODEL", "PRICES", "ClaudeBrain", "Ledger", "Price", "price_for"]

# Models that take manual extended thinking (a token budget) instead of adaptive thinking and
# the effort setting; every newer model is adaptive (Sonnet 5+ refuses the manual form).
MANUAL_THINKING = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4-",
                   "claude-opus-4-1", "claude-opus-4-5")
EFFORTS = ("low", "medium", "high", "xhigh", "max")
# The SDK refuses non-streaming requests that may take over 10 minutes (max_tokens > ~21k).
MAX_NONSTREAMING_TOKENS = 21_000


def thinking_params(model: str, effort: str, thinking_budget: int, max_tokens: int
                    ) -> dict[str, Any]:
    """The request's thinking settings: adaptive thinking at ``effort`` on current models, a
    manual budget (below max_tokens, leaving room for the answer) on older ones."""
    if effort not in EFFORTS:
        raise ValueError(f"effort {effort!r}: one of {', '.join(EFFORTS)}")
    if model == "claude-sonnet-4" or model.startswith(MANUAL_THINKING):
        budget = max(1024, min(thinking_budget, max_tokens - 2048))
        return {"thinking": {"type": "enabled", "budget_tokens": budget}}
    return {"thinking": {"type": "adaptive"}, "output_config": {"effort": effort}}


USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                "cache_read_input_tokens")


@dataclass
class Ledger:
    """Tokens and dollars per role, from the API's own usage numbers. Without a price (an
    unknown model and no override) it counts tokens only and ``priced`` is False."""

    price: Price | None
    roles: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, role: str, usage: Any) -> float:
        row = self.roles.setdefault(role, {"calls": 0, **dict.fromkeys(USAGE_FIELDS, 0),
                                           "cost_usd": 0.0})
        n = {f: int(getattr(usage, f, 0) or 0) for f in USAGE_FIELDS}
        cost = 0.0
        if self.price is not None:
            cost = self.price.cost(n["input_tokens"], n["output_tokens"],
                                   n["cache_creation_input_tokens"], n["cache_read_input_tokens"])
        row["calls"] += 1
        for f in USAGE_FIELDS:
            row[f] += n[f]
        row["cost_usd"] += cost
        return cost

    @property
    def spent(self) -> float:
        return sum(r["cost_usd"] for r in self.roles.values())

    @property
    def tokens(self) -> int:
        return int(sum(r[f] for r in self.roles.values() for f in USAGE_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        total: dict[str, float] = {"calls": 0, **dict.fromkeys(USAGE_FIELDS, 0), "cost_usd": 0.0}
        for row in self.roles.values():
            for k in total:
                total[k] += row[k]
        return {"roles": {k: dict(v) for k, v in self.roles.items()}, "total": total,
                "priced": self.price is not None}


SUBMIT = {
    "name": "submit_plan",
    "description": (
        "Submit the ONE configuration to deploy and measure next; ends this turn. For an "
        "existing scheduler give policy (+ tunables within get_policy's bounds). For generated "
        "code give policy=\"custom\" and the handle verify_source returned (do not resend the "
        "source). Execution then verifies again (cached), deploys with a canary, measures "
        "against the baseline and keeps or reverts it. Example: "
        "{\"policy\": \"ljf\", \"tunables\": {\"slice_us\": 25000}, "
        "\"rationale\": \"long tail\"}"),
    "input_schema": {"type": "object", "properties": {
        "policy": {"type": "string", "description": "a policy name from search_policies, or "
                   "\"custom\" for generated code (with handle)"},
        "tunables": {"type": "object", "additionalProperties": True,
                     "description": "tunable name -> value, within get_policy's bounds"},
        "handle": {"type": "string", "description": "for policy=\"custom\": the handle "
                   "verify_source returned, e.g. \"gen_3f2a9c0d1e\""},
        "rationale": {"type": "string", "description": "one line: why this should help"}},
        "required": ["policy", "rationale"]},
}


def _tool_defs(role: str) -> list[dict]:
    defs = [{"name": s.name, "description": s.full_description(), "input_schema": s.schema}
            for s in specs_for(role) if s.name in SPECS]
    if role == "planning":
        defs.append(dict(SUBMIT))
    defs[-1] = {**defs[-1], "cache_control": {"type": "ephemeral"}}
    return defs


def _blocks(content: list) -> list[dict]:
    """Response content → request content. Thinking and redacted-thinking blocks go back
    exactly as received (the API verifies their signatures); anything else unknown is passed
    back as the SDK parsed it."""
    out = []
    for b in content:
        if b.type == "text":
            out.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            out.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
        elif b.type == "thinking":
            out.append({"type": "thinking", "thinking": b.thinking, "signature": b.signature})
        elif b.type == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": b.data})
        else:
            out.append(b.model_dump(mode="json", exclude_none=True))
    return out


UNCACHEABLE = ("thinking", "redacted_thinking")


def _cache_last(messages: list[dict]) -> None:
    """One moving breakpoint on the newest cacheable block (plus system and tools: 3 of the 4
    allowed). Thinking blocks cannot carry one, and are never modified."""
    for m in messages:
        if isinstance(m["content"], list):
            for b in m["content"]:
                if b.get("type") not in UNCACHEABLE:
                    b.pop("cache_control", None)
    last = messages[-1]
    if isinstance(last["content"], str):
        last["content"] = [{"type": "text", "text": last["content"]}]
    for b in reversed(last["content"]):
        if b.get("type") not in UNCACHEABLE:
            b["cache_control"] = {"type": "ephemeral"}
            return


class _IterationBudget(Exception):
    """This iteration's share of the budget is spent (the loop then stops, named)."""


class ClaudeBrain:
    name = "claude"

    def __init__(self, tools: AgentTools, api_key: str, model: str = DEFAULT_MODEL,
                 budget_usd: float = 1.0, base_url: str | None = None,
                 prices: dict[str, Price] | None = None, max_tokens: int = 16_000,
                 max_turns: int = 12, reflect_lessons: bool = False, client: Any = None,
                 max_result_chars: int = 20000, effort: str = "medium",
                 thinking_budget: int = 6000, price: Price | None = None,
                 iteration_budget_usd: float | None = None, budget_tokens: int | None = None):
        import anthropic

        self.tools, self.model, self.budget_usd = tools, model, float(budget_usd)
        self.iteration_budget_usd = iteration_budget_usd
        self.ledger = Ledger(price or price_for(model, prices))
        self.budget_tokens = budget_tokens
        if self.ledger.price is None and budget_tokens is None:
            self.budget_tokens = 2_000_000
            log.warning("no price for %s: the budget is %d tokens instead of $%.2f", model,
                        self.budget_tokens, self.budget_usd)
        self.max_tokens = min(int(max_tokens), MAX_NONSTREAMING_TOKENS)
        self.thinking = thinking_params(model, effort, thinking_budget, self.max_tokens)
        self.effort, self.max_turns = effort, max_turns
        self.reflect_lessons = reflect_lessons
        self.max_result_chars = max_result_chars
        self.client = client or anthropic.Anthropic(api_key=api_key, base_url=base_url)
        self.traces: list[dict] = []  # per call of plan(): the tool calls, for the history view
        # why the last plan() returned None when it was not "nothing left to try":
        # (stop reason, message) for the loop's stop record
        self.no_plan: tuple[str, str] | None = None
        self._iteration_start = 0.0

    # -- accounting --------------------------------------------------------------------------
    def accounting(self) -> dict[str, Any]:
        return {**self.ledger.to_dict(), "model": self.model, "budget_usd": self.budget_usd,
                "iteration_budget_usd": self.iteration_budget_usd,
                "budget_tokens": self.budget_tokens}

    def _check_budget(self) -> None:
        spent, tokens = self.ledger.spent, self.ledger.tokens
        if self.ledger.price is not None and spent >= self.budget_usd:
            raise BudgetExceeded(f"budget spent: ${spent:.4f} of ${self.budget_usd:.2f}")
        if self.budget_tokens is not None and tokens >= self.budget_tokens:
            raise BudgetExceeded(f"token budget spent: {tokens} of {self.budget_tokens}")
        it = spent - self._iteration_start
        if self.iteration_budget_usd is not None and it >= self.iteration_budget_usd:
            raise _IterationBudget(f"this iteration spent ${it:.4f} of its "
                                   f"${self.iteration_budget_usd:.4f} without a plan")

    def _create(self, role: str, system: str, tools: list[dict] | None, messages: list[dict],
                thinking: dict[str, Any] | None = None):
        self._check_budget()
        kw: dict[str, Any] = dict(self.thinking if thinking is None else thinking)
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

    def _stop(self, trace: dict, reason: str, message: str) -> None:
        trace["end"] = reason
        self.no_plan = (reason, message)
        log.warning("planning stopped: %s", message)

    def plan(self, ctx: PlanContext) -> Plan | None:
        tools = _tool_defs("planning")
        messages: list[dict] = [{"role": "user", "content": self._brief(ctx)}]
        trace: dict[str, Any] = {"iteration": ctx.iteration, "calls": [], "thinking_blocks": 0}
        self.traces.append(trace)
        self.no_plan = None
        self._iteration_start = self.ledger.spent
        paused = False
        for _ in range(self.max_turns):
            try:
                resp = self._create("planning", PLANNING_SYSTEM, tools, messages)
            except _IterationBudget as e:
                self._stop(trace, "iteration_budget", str(e))
                return None
            content = _blocks(resp.content)
            trace["thinking_blocks"] += sum(b["type"] in UNCACHEABLE for b in content)
            messages.append({"role": "assistant", "content": content})
            paused = resp.stop_reason == "pause_turn"
            if paused:  # the server paused a long turn: send it back as is to continue
                continue
            if resp.stop_reason == "max_tokens":
                self._stop(trace, "max_tokens", f"{self.model} stopped at max_tokens="
                           f"{self.max_tokens} (thinking included) before submitting a plan; "
                           "raise max_tokens or lower the effort")
                return None
            if resp.stop_reason == "refusal":
                self._stop(trace, "refusal", f"{self.model} declined to answer (refusal)")
                return None
            uses = [b for b in resp.content if b.type == "tool_use"]
            if resp.stop_reason != "tool_use" or not uses:
                trace["end"] = "no plan"
                return None
            results = []
            for use in uses:
                args = dict(use.input or {})
                if use.name == "submit_plan":
                    plan = self._submitted(args)
                    if isinstance(plan, Plan):
                        trace["end"] = "submitted"
                        trace["calls"].append({"tool": "submit_plan", "policy": plan.policy,
                                               "handle": args.get("handle")})
                        return plan
                    trace["calls"].append({"tool": "submit_plan", "error": plan})
                    results.append({"type": "tool_result", "tool_use_id": use.id,
                                    "content": json.dumps({"error": plan}), "is_error": True})
                    continue
                results.append(self._run_tool(use.id, use.name, args, trace))
            messages.append({"role": "user", "content": results})
        if paused:
            self._stop(trace, "pause_turn", f"{self.model} was still paused (pause_turn) "
                       f"after {self.max_turns} turns")
        else:
            self._stop(trace, "max_turns", f"no plan after {self.max_turns} turns")
        return None

    def _submitted(self, args: dict) -> Plan | str:
        """The plan ``submit_plan`` describes, or why it cannot be deployed (sent back)."""
        policy = str(args.get("policy") or "custom")
        source = args.get("source") or None  # tolerated: older prompts sent the code
        handle = args.get("handle")
        if handle:
            source = self.tools.sources.get(str(handle))
            if source is None:
                known = ", ".join(sorted(self.tools.sources)) or "none yet"
                return (f"unknown handle {handle!r}: verify_source returns one "
                        f"(handles so far: {known})")
        if policy == "custom" and not source:
            return "policy \"custom\" needs the handle verify_source returned"
        return Plan(policy, dict(args.get("tunables") or {}), source,
                    str(args.get("rationale", "")), self.name)

    def _run_tool(self, use_id: str, name: str, args: dict, trace: dict) -> dict:
        allowed = {s.name for s in specs_for("planning")}
        call: dict[str, Any] = {"tool": name}
        try:
            if name not in allowed:
                raise ToolFailure(f"{name} is not a Planning tool; use one of "
                                  f"{', '.join(sorted(allowed | {'submit_plan'}))}")
            result = self.tools.call(name, args)
            text, error = fit_result(result, self.max_result_chars), False
            if isinstance(result, dict) and "ok" in result:
                call["ok"] = result["ok"]
                call["failed_stage"] = result.get("failed_stage")
        except ToolFailure as e:
            text, error = json.dumps({"error": str(e), "kind": e.kind}), True
            call["error"] = str(e)
        trace["calls"].append(call)
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
        low = thinking_params(self.model, "low", 1024, self.max_tokens)
        try:
            resp = self._create("learning", LEARNING_SYSTEM, None,
                                [{"role": "user", "content": brief}], thinking=low)
        except _IterationBudget:
            return None
        text = " ".join(b.text for b in resp.content if b.type == "text").strip()
        return text[:300] or None
