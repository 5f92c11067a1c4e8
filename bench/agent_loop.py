"""The agent's own costs on the host, measured side by side in one run.

1. Offline planner: decision time per iteration (Planning's step time) over two optimizations
   of the same workload with the real policy repository (MiniLM when installed), the second
   reusing what the first learned; the helper is simulated (the host has no sched_ext), so the
   numbers are the planner's, not the scheduler's. Target: <= 1 s per decision.
2. Claude brain through the real anthropic SDK against a local Messages API server with
   scripted replies and token counts: tokens and cost per iteration as the accounting computes
   them (prompt caching included).

The VM side (iterations and wall time to the best scheduler live, makespan vs the kernel
default) is what `schedcp demo` prints.

    python bench/agent_loop.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.agent.fakeapi import FakeMessagesAPI, end_turn, tool_use, usage  # noqa: E402
from tests.app.agent.sim import SimExecutor, SimHelper  # noqa: E402

from schedcp.agent.loop import LoopConfig, OptimizationLoop  # noqa: E402
from schedcp.agent.offline import OfflinePlanner  # noqa: E402
from schedcp.agent.tools import AgentTools  # noqa: E402
from schedcp.repo import PolicyRepository  # noqa: E402

DECISION_TARGET_S = 1.0


def _planning(result) -> list[float]:
    return [s["seconds"] for s in result.steps if s["role"] == "planning"]


def offline(repo) -> dict:
    preset = repo.get("ljf").presets["throughput"]
    effect = {"ljf{}": 0.7, "ljf" + json.dumps(preset, sort_keys=True): 0.8}
    out = {}
    for run in ("first", "second"):
        helper = SimHelper(effect)
        tools = AgentTools(repo=repo, client=helper)
        result = OptimizationLoop(OfflinePlanner(tools=tools), tools, SimExecutor(helper),
                                  LoopConfig(patience=3, max_iterations=10)).run()
        secs = _planning(result)
        out[run] = {"iterations": result.iterations, "stop": result.message,
                    "decision_s": [round(s, 4) for s in secs],
                    "decision_max_s": max(secs), "decision_median_s": statistics.median(secs)}
    return out


def claude(repo) -> dict:
    import anthropic

    from schedcp.agent.claude import ClaudeBrain

    api = FakeMessagesAPI()
    api.start()
    preset = repo.get("ljf").presets["throughput"]
    # a realistic shape: the first call writes the cache (system prompt + tools), later ones
    # read it; each iteration one search and one plan
    api.script = [
        tool_use("search_policies", {"query": "batch jobs with a long tail"},
                 use=usage(1900, 70, cache_write=2600)),
        tool_use("submit_plan", {"policy": "ljf", "rationale": "long tail"},
                 use=usage(700, 110, cache_read=2600)),
        tool_use("submit_plan", {"policy": "ljf", "tunables": preset,
                                 "rationale": "longer slices"},
                 use=usage(1500, 120, cache_read=2600)),
        end_turn("Nothing better to try.", usage(1700, 30, cache_read=2600)),
    ]
    helper = SimHelper({"ljf{}": 0.7})
    tools = AgentTools(repo=repo, client=helper)
    client = anthropic.Anthropic(base_url=api.url, api_key="dummy", max_retries=0)
    brain = ClaudeBrain(tools, api_key="dummy", client=client)
    result = OptimizationLoop(brain, tools, SimExecutor(helper), LoopConfig(patience=5)).run()
    costs = [s["cost_usd"] for s in result.steps if s["role"] == "planning"]
    per_it = [round(b - a, 6) for a, b in zip([0.0, *costs], costs, strict=False)]
    acct = result.accounting
    return {"model": brain.model, "iterations": result.iterations, "cost_per_iteration_usd":
            per_it, "total": acct["total"], "roles": acct.get("roles", {})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-agent-") as d:
        repo = PolicyRepository.open(Path(d) / "policies.db")
        try:
            res = {"embedder": type(repo.embedder).__name__, "offline": offline(repo)}
        finally:
            repo.close()
        repo = PolicyRepository.open(Path(d) / "fresh.db")  # no history: Claude explores
        try:
            res["claude_fake_api"] = claude(repo)
        finally:
            repo.close()
    met = res["offline"]["first"]["decision_max_s"] <= DECISION_TARGET_S
    res["targets"] = {"decision_le_1s": met}
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    off = res["offline"]
    print(f"offline planner ({res['embedder']}), simulated helper, real repository:")
    for run in ("first", "second"):
        r = off[run]
        print(f"  {run} run: {r['iterations']} iteration(s); decision time per iteration "
              f"median {r['decision_median_s'] * 1000:.1f} ms, max "
              f"{r['decision_max_s'] * 1000:.1f} ms; stop: {r['stop']}")
    print(f"  target decision <= {DECISION_TARGET_S:g} s: {'met' if met else 'missed'}")
    c = res["claude_fake_api"]
    t = c["total"]
    print(f"claude brain ({c['model']}) against the fake Messages API: {c['iterations']} "
          f"iteration(s), cost per iteration " + ", ".join(f"${x:.5f}" for x in
                                                            c["cost_per_iteration_usd"]))
    print(f"  total ${t['cost_usd']:.5f}: {int(t['input_tokens'])} in, "
          f"{int(t['output_tokens'])} out, {int(t['cache_creation_input_tokens'])} cache "
          f"writes, {int(t['cache_read_input_tokens'])} cache reads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
