"""A brain over the OpenAI-compatible Chat Completions protocol, through the ``openai`` client
library: a local server (Ollama, llama.cpp's llama-server, vLLM) keeps the process list on
the machine, or any hosted endpoint that speaks the protocol.

Same tools (the specs' descriptions and schemas as function tools), same system prompt, same
``submit_plan`` with a verify_source handle, same per-role ledger. Local models have no
price: the budget is then in tokens (``budget_tokens``), in dollars only when a price is
given. The conversation code (brief, submitted plan, tool calls, budget checks) is the Claude
brain's, inherited; only the wire format differs.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from ..model import Plan
from ..pricing import DEFAULT_LOCAL_URL, Price
from .brain import PlanContext
from .claude import SUBMIT, ClaudeBrain, Ledger, _IterationBudget
from .prompts import LEARNING_SYSTEM, PLANNING_SYSTEM
from .tools import AgentTools, specs_for

log = logging.getLogger("schedcp.agent")

__all__ = ["DEFAULT_LOCAL_URL", "OpenAIBrain", "function_tools"]


def function_tools(role: str) -> list[dict]:
    """The role's tools in the Chat Completions form."""
    out = [{"type": "function", "function": {"name": s.name,
                                             "description": s.full_description(),
                                             "parameters": s.schema}}
           for s in specs_for(role)]
    if role == "planning":
        out.append({"type": "function", "function": {
            "name": SUBMIT["name"], "description": SUBMIT["description"],
            "parameters": SUBMIT["input_schema"]}})
    return out


def _usage(u: Any) -> SimpleNamespace:
    """Chat Completions usage → the ledger's fields (cached prompt tokens as cache reads)."""
    prompt = int(getattr(u, "prompt_tokens", 0) or 0)
    details = getattr(u, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details else 0
    return SimpleNamespace(input_tokens=prompt - cached,
                           output_tokens=int(getattr(u, "completion_tokens", 0) or 0),
                           cache_creation_input_tokens=0, cache_read_input_tokens=cached)


class OpenAIBrain(ClaudeBrain):
    name = "openai"

    def __init__(self, tools: AgentTools, model: str, base_url: str = DEFAULT_LOCAL_URL,
                 api_key: str = "local", budget_usd: float = 1.0,
                 budget_tokens: int | None = None, price: Price | None = None,
                 max_tokens: int = 8192,
                 max_turns: int = 12, reflect_lessons: bool = False, client: Any = None,
                 max_result_chars: int = 20000, iteration_budget_usd: float | None = None):
        import openai

        self.tools, self.model, self.budget_usd = tools, model, float(budget_usd)
        self.iteration_budget_usd = iteration_budget_usd
        self.ledger = Ledger(price)  # local models cost nothing per token: tokens count
        self.budget_tokens = budget_tokens
        if self.ledger.price is None and budget_tokens is None:
            self.budget_tokens = 2_000_000
        self.max_tokens, self.max_turns = int(max_tokens), max_turns
        self.reflect_lessons = reflect_lessons
        self.max_result_chars = max_result_chars
        self.client = client or openai.OpenAI(base_url=base_url, api_key=api_key)
        self.traces: list[dict] = []
        self.no_plan: tuple[str, str] | None = None
        self._iteration_start = 0.0

    def _chat(self, role: str, messages: list[dict], tools: list[dict] | None):
        self._check_budget()
        kw: dict[str, Any] = {"tools": tools} if tools else {}
        resp = self.client.chat.completions.create(model=self.model, messages=messages,
                                                   max_tokens=self.max_tokens, **kw)
        if resp.usage is not None:
            self.ledger.add(role, _usage(resp.usage))
        else:  # some local servers omit usage: count the call, not the tokens
            self.ledger.add(role, SimpleNamespace())
        return resp

    def plan(self, ctx: PlanContext) -> Plan | None:
        tools = function_tools("planning")
        messages: list[dict] = [{"role": "system", "content": PLANNING_SYSTEM},
                                {"role": "user", "content": self._brief(ctx)}]
        trace: dict[str, Any] = {"iteration": ctx.iteration, "calls": []}
        self.traces.append(trace)
        self.no_plan = None
        self._iteration_start = self.ledger.spent
        for _ in range(self.max_turns):
            try:
                resp = self._chat("planning", messages, tools)
            except _IterationBudget as e:
                self._stop(trace, "iteration_budget", str(e))
                return None
            choice = resp.choices[0]
            msg = choice.message
            calls = list(msg.tool_calls or [])
            turn: dict[str, Any] = {"role": "assistant", "content": msg.content or ""}
            if calls:
                turn["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                    "name": c.function.name, "arguments": c.function.arguments}}
                    for c in calls]
            messages.append(turn)
            if choice.finish_reason == "length":
                self._stop(trace, "max_tokens", f"{self.model} stopped at max_tokens="
                           f"{self.max_tokens} before submitting a plan; raise max_tokens")
                return None
            if not calls:
                trace["end"] = "no plan"
                return None
            for c in calls:
                try:
                    args = json.loads(c.function.arguments or "{}")
                    if not isinstance(args, dict):
                        raise ValueError("not an object")
                except ValueError as e:
                    messages.append({"role": "tool", "tool_call_id": c.id, "content": json.dumps(
                        {"error": f"arguments are not a JSON object ({e}); send "
                                  "{\"name\": value, ...}", "kind": "InvalidArgs"})})
                    trace["calls"].append({"tool": c.function.name, "error": "bad JSON"})
                    continue
                if c.function.name == "submit_plan":
                    plan = self._submitted(args)
                    if isinstance(plan, Plan):
                        trace["end"] = "submitted"
                        trace["calls"].append({"tool": "submit_plan", "policy": plan.policy})
                        return plan
                    trace["calls"].append({"tool": "submit_plan", "error": plan})
                    messages.append({"role": "tool", "tool_call_id": c.id,
                                     "content": json.dumps({"error": plan})})
                    continue
                result = self._run_tool(c.id, c.function.name, args, trace)
                messages.append({"role": "tool", "tool_call_id": c.id,
                                 "content": result["content"]})
        self._stop(trace, "max_turns", f"no plan after {self.max_turns} turns")
        return None

    def reflect(self, ctx, outcome, lesson) -> str | None:
        if not self.reflect_lessons:
            return None
        brief = json.dumps({"profile_key": ctx.profile.key, "lesson": lesson.note,
                            "outcome": lesson.outcome, "score": lesson.score})
        try:
            resp = self._chat("learning", [{"role": "system", "content": LEARNING_SYSTEM},
                                           {"role": "user", "content": brief}], None)
        except _IterationBudget:
            return None
        return (resp.choices[0].message.content or "").strip()[:300] or None
