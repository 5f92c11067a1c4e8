"""One "Optimize this app" run, Qt-free: the agent loop on a running process, wired like
``schedcp optimize --pid`` but with the brain (offline, Claude, or a local model behind an
OpenAI-compatible server), model and budget from the tray's settings.
The tray calls it in a worker thread; ``cancel`` is the loop's own Event."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class OptimizeError(Exception):
    """The run could not start; the message says what to change (e.g. add an API key)."""


@dataclass
class Request:
    pid: int  # the process to optimize (already apps.app_root'ed)
    name: str  # what the person calls it ("Firefox")
    goal: str
    analyze_only: bool = False  # no sched_ext/helper: observe and report, change nothing
    windowed: bool = True  # the app in front has a window: a person is using it
    game: bool = False  # its identity says game (.desktop Categories=Game, Steam, Proton)
    seconds: float = 3.0  # measurement window per candidate
    max_iterations: int = 6
    canary_s: float = 10.0
    # a profile's re-check: (policy, tunables) measured against what ran before, nothing else
    # tried; the effect comes out of the same A/B trials as every optimization's
    plan: tuple[str, dict] | None = None
    keep: bool = False  # a re-check keeps the profile's scheduler only if it still wins


def run(req: Request, settings: Any, on_step: Callable[[dict], None],
        cancel: threading.Event, client_factory: Callable[[], Any] | None = None,
        api_key: Callable[[], str | None] | None = None,
        on_progress: Callable[[str, str], None] | None = None):
    """Run the loop to its end; returns its LoopResult. Raises OptimizeError before the
    first step when the configuration cannot work. ``on_progress(stage, message)`` gets the
    helper's VerifyProgress (sent only to the connection that asked, i.e. the loop's)."""
    from ..agent import AgentTools, LoopConfig, OfflinePlanner, OptimizationLoop, PidExecutor

    def factory():
        if client_factory is None:
            from ..client import HelperClient

            client = HelperClient()
        else:
            client = client_factory()
        if on_progress is not None and hasattr(client, "subscribe"):
            client.subscribe(lambda s: on_progress(str(s.args[1]), str(s.args[2]))
                             if s.member == "VerifyProgress" and len(s.args) >= 3 else None)
        return client

    tools = AgentTools(client_factory=factory)
    try:
        if (getattr(settings, "brain", "offline") == "claude" and not req.analyze_only
                and req.plan is None):  # a re-check plans nothing: no key needed
            from ..agent.claude import ClaudeBrain

            if api_key is None:
                from .settings import get_api_key as api_key
            try:
                key = api_key()
            except Exception as e:  # no Secret Service: say so rather than crash the worker
                raise OptimizeError(f"cannot read the API key: {e}") from None
            if not key:
                raise OptimizeError("the Claude brain needs an Anthropic API key: add one in "
                                    "Settings, or switch the brain to Offline")
            brain = ClaudeBrain(tools, key, model=settings.model, budget_usd=settings.budget_usd)
        elif getattr(settings, "brain", "offline") == "openai" and not req.analyze_only:
            brain = _local_brain(tools, settings)
        else:
            brain = OfflinePlanner(tools=tools)
        cfg = LoopConfig(goal=req.goal, max_iterations=0 if req.analyze_only else
                         req.max_iterations, canary_s=req.canary_s)
        executor = PidExecutor(req.pid, req.seconds, windowed=req.windowed, game=req.game)
        if req.plan is not None and not req.analyze_only:
            from ..agent.fixed import measure_plan
            from ..model import Plan

            policy, tunables = req.plan
            return measure_plan(tools, executor, Plan(policy, dict(tunables), None,
                                                      "re-check of the profile", "profile"),
                                req.goal, keep=req.keep, config=cfg, on_step=on_step,
                                cancel=cancel)
        result = OptimizationLoop(brain, tools, executor, cfg, cancel, on_step).run()
        obs = next((s for s in result.steps if s.get("role") == "observation"), None)
        if req.analyze_only and obs is not None and isinstance(obs.get("profile"), dict):
            from ..analysis.answer import answer  # Analyze answers, and History keeps it

            on_step({"iteration": 0, **answer(obs["profile"], req.goal, req.name,
                                              can_switch=False).to_step()})
        return result
    finally:
        tools.close()


def _local_brain(tools: Any, settings: Any):
    """The OpenAI-compatible brain from the settings (a token budget: local models have no
    price); OptimizeError when it cannot run."""
    model = (getattr(settings, "local_model", "") or "").strip()
    if not model:
        raise OptimizeError("the local brain needs the server's model name (e.g. qwen3:8b): "
                            "set it in Settings, or switch the brain to Offline")
    from ..agent.openai_compat import OpenAIBrain

    try:  # the client library is imported on construction
        return OpenAIBrain(tools, model, base_url=settings.local_url,
                           budget_tokens=int(settings.budget_tokens))
    except ImportError:
        raise OptimizeError("the local brain needs the openai package (pip install "
                            "'schedcp[local]'), or switch the brain to Offline") from None
