"""ClaudeBrain driven by the REAL anthropic SDK against a local Messages API server with
scripted replies: what the SDK sends (tools, cache breakpoints, tool results carrying real tool
output), the per-role token/cost ledger, the budget stop, and a generated scheduler that the
helper refuses, is fixed and passes (real verify over the private bus, VM stage included)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from schedcp.agent.brain import BudgetExceeded, PlanContext
from schedcp.agent.claude import PRICES, ClaudeBrain, Price, price_for
from schedcp.agent.executors import BatchExecutor
from schedcp.agent.loop import LoopConfig, OptimizationLoop
from schedcp.agent.tools import AgentTools, specs_for
from schedcp.model import Metrics, WorkloadProfile
from tests.app.agent.fakeapi import end_turn, message, tool_use, usage
from tests.app.agent.sources import BROKEN, FIXED

PRICE = PRICES["claude-sonnet-5-5"]  # the default model


def cost(u: dict, p: Price = PRICE) -> float:
    return (u["input_tokens"] * p.input + u["output_tokens"] * p.output
            + u["cache_creation_input_tokens"] * p.cache_write
            + u["cache_read_input_tokens"] * p.cache_read) / 1e6


def brain(api, tools, **kw) -> ClaudeBrain:
    import anthropic

    client = anthropic.Anthropic(base_url=api.url, api_key="dummy", max_retries=0)
    return ClaudeBrain(tools, api_key="dummy", client=client, **kw)


def batch_ctx(repo, iteration: int = 1) -> PlanContext:
    prof = WorkloadProfile("batch", "throughput", 10, [10], exe="/usr/bin/crunch",
                           description="CPU-bound batch jobs with a long tail")
    return PlanContext(prof, Metrics(makespan_s=12.0), iteration, [], repo.history(prof.key),
                       repo.best(prof.key), repo.antipatterns(prof.key))


def test_tool_loop_sends_cached_tools_and_real_tool_results(fake_api, repo):
    u = [usage(1800, 60, cache_write=2600), usage(300, 80, cache_read=2600),
         usage(900, 120, cache_read=2900)]
    two_gets = message([
        {"type": "tool_use", "id": "toolu_bad", "name": "get_policy",
         "input": {"name": "no_such_policy"}},
        {"type": "tool_use", "id": "toolu_ljf", "name": "get_policy", "input": {"name": "ljf"}},
    ], "tool_use", u[1])
    fake_api.script = [
        tool_use("search_policies", {"query": "batch jobs with a long tail", "k": 3},
                 "Looking for batch schedulers.", u[0]),
        two_gets,
        tool_use("submit_plan", {"policy": "ljf", "tunables": {"slice_us": 30000},
                                 "rationale": "long tail: longest job first"}, use=u[2]),
    ]
    b = brain(fake_api, AgentTools(repo=repo))
    plan = b.plan(batch_ctx(repo))
    assert (plan.policy, plan.tunables, plan.brain) == ("ljf", {"slice_us": 30000}, "claude")

    reqs = fake_api.requests
    assert len(reqs) == 3
    headers = {k.lower(): v for k, v in fake_api.headers[0].items()}
    assert "dummy" in headers.get("x-api-key", "") + headers.get("authorization", "")
    for r in reqs:
        assert r["model"] == "claude-sonnet-5-5"
        assert r["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert r["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert all("cache_control" not in t for t in r["tools"][:-1])
        assert {t["name"] for t in r["tools"]} == {s.name for s in specs_for("planning")} | {
            "submit_plan"}
        breakpoints = [b for m in r["messages"] if isinstance(m["content"], list)
                       for b in m["content"] if "cache_control" in b]
        assert len(breakpoints) == 1 and breakpoints[0] is r["messages"][-1]["content"][-1]
    assert "batch:throughput:crunch" in reqs[0]["messages"][0]["content"][0]["text"]

    # the search result the model got is the real repository's answer
    result = reqs[1]["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and not result["is_error"]
    hits = json.loads(result["content"])["hits"]
    assert hits[0]["name"] == "ljf" and len(hits) == 3
    assert reqs[1]["messages"][1]["content"][1]["type"] == "tool_use"  # assistant turn echoed

    bad, good = reqs[2]["messages"][-1]["content"]
    assert bad["tool_use_id"] == "toolu_bad" and bad["is_error"]
    assert "no_such_policy" in json.loads(bad["content"])["error"]
    assert good["tool_use_id"] == "toolu_ljf" and not good["is_error"]
    entry = json.loads(good["content"])
    assert entry["presets"] == repo.get("ljf").presets and entry["description"]

    acct = b.accounting()
    row = acct["roles"]["planning"]
    assert row["calls"] == 3
    assert row["input_tokens"] == 3000 and row["output_tokens"] == 260
    assert row["cache_creation_input_tokens"] == 2600
    assert row["cache_read_input_tokens"] == 5500
    assert row["cost_usd"] == pytest.approx(sum(cost(x) for x in u))
    assert acct["total"]["cost_usd"] == pytest.approx(row["cost_usd"])
    print(f"fake API, one planning iteration: {row['calls']} calls, "
          f"{row['input_tokens']} in + {row['output_tokens']} out + "
          f"{row['cache_creation_input_tokens']} cache write + "
          f"{row['cache_read_input_tokens']} cache read = ${row['cost_usd']:.5f}")


def test_prices_dated_configurable_and_unknown_models_counted_without_dollars(caplog):
    assert price_for("claude-sonnet-4-5-20250929") == PRICES["claude-sonnet-4-5"]
    assert price_for("claude-opus-4-1").input == 15.0
    # Sonnet 5.5 reads the cache at 0.05x input since 2026-10-07 (the old row said 0.1x)
    assert PRICES["claude-sonnet-5-5"].cache_read == pytest.approx(0.05 * 2.0)
    for unknown in ("gpt-5", "claude-opus-4-9", "claude-sonnet-5-5-x"):
        assert price_for(unknown) is None
        assert f"no price for model {unknown!r}" in caplog.text
    mine = {"my-model": Price(1.0, 2.0, 0.5, 0.01)}
    assert price_for("my-model", mine).cache_read == 0.01
    assert Price.parse("3,15") == Price(3.0, 15.0, 3.75, 0.3)
    assert Price.parse("1, 2, 3, 4") == Price(1.0, 2.0, 3.0, 4.0)
    for bad in ("3", "a,b", "1,2,3,4,5", "-1,2"):
        with pytest.raises(ValueError, match="price"):
            Price.parse(bad)
    haiku = PRICES["claude-haiku-5-5"]  # priced by prompt length
    assert haiku.cost(90_000, 1000, 0, 0) == pytest.approx((90_000 * 0.1 + 1000 * 0.5) / 1e6)
    assert haiku.cost(90_000, 1000, 0, 20_000) == pytest.approx(
        (90_000 * 0.5 + 1000 * 2.5 + 20_000 * 0.05) / 1e6)


def test_unknown_model_runs_and_counts_tokens_without_dollars(fake_api, repo):
    fake_api.script = [tool_use("submit_plan", {"policy": "ljf", "rationale": "x"},
                                use=usage(1000, 50))]
    b = brain(fake_api, AgentTools(repo=repo), model="claude-future-9")
    assert b.plan(batch_ctx(repo)).policy == "ljf"
    acct = b.accounting()
    assert acct["priced"] is False and acct["total"]["cost_usd"] == 0.0
    assert acct["total"]["input_tokens"] == 1000 and acct["budget_tokens"] == 2_000_000
    assert fake_api.requests[0]["model"] == "claude-future-9"
    priced = brain(fake_api, AgentTools(repo=repo), model="claude-future-9",
                   price=Price.parse("1,5"))
    fake_api.script = [tool_use("submit_plan", {"policy": "ljf", "rationale": "x"},
                                use=usage(1000, 50))]
    priced.plan(batch_ctx(repo))
    assert priced.accounting()["total"]["cost_usd"] == pytest.approx((1000 + 250) / 1e6)


def test_end_turn_without_a_plan_means_nothing_to_try(fake_api, repo):
    fake_api.script = [end_turn("Nothing untried is likely to beat the best.")]
    assert brain(fake_api, AgentTools(repo=repo)).plan(batch_ctx(repo)) is None


def test_budget_cap_stops_before_the_next_paid_call(fake_api, repo):
    expensive = usage(2000, 1000)  # $0.004 + $0.010 = $0.014 on Sonnet 5.5
    fake_api.script = [tool_use("search_policies", {"query": "batch"}, use=expensive),
                       tool_use("submit_plan", {"policy": "ljf", "rationale": "x"})]
    b = brain(fake_api, AgentTools(repo=repo), budget_usd=0.01)
    with pytest.raises(BudgetExceeded, match=r"\$0\.0140 of \$0\.01"):
        b.plan(batch_ctx(repo))
    assert len(fake_api.requests) == 1  # the second call was never sent

    # the loop turns it into a clean stop, with the ledger in the result
    class Fixed:
        target_pids = ()

        def observe(self, goal):
            return batch_ctx(repo).profile, Metrics(makespan_s=12.0)

        def measure(self):
            raise AssertionError("nothing may run after the budget is spent")

    fake_api.script = [tool_use("search_policies", {"query": "batch"}, use=expensive)]
    b = brain(fake_api, AgentTools(repo=repo), budget_usd=0.01)
    result = OptimizationLoop(b, AgentTools(repo=repo), Fixed(), LoopConfig()).run()
    assert result.stop_reason == "budget"
    assert [s["role"] for s in result.steps] == ["observation", "stop"]
    assert result.accounting["total"]["cost_usd"] == pytest.approx(0.014)
    assert result.steps[-1]["cost_usd"] == pytest.approx(0.014)


@pytest.mark.vm
def test_generated_scheduler_refused_fixed_verified_then_loop_stops_on_no_sched_ext(
        fake_api, repo, stack):
    """One conversation through the real helper: BROKEN is refused at the static stage, the
    report goes back to Claude, FIXED passes every stage (the VM boots here), Claude submits
    it; Execution verifies again (cached) and deploys — NoSchedExt on this host — so the loop
    records a failed outcome, keeps it out of the antipatterns, and stops."""
    seen: dict = {}

    def after_refusal(body: dict) -> dict:
        seen["refusal"] = body["messages"][-1]["content"][0]
        return tool_use("verify_source", {"source": FIXED}, "Fixing the enqueue path.",
                        usage(400, 700, cache_read=3000))

    def after_pass(body: dict) -> dict:
        seen["pass"] = body["messages"][-1]["content"][0]
        handle = json.loads(seen["pass"]["content"])["handle"]
        return tool_use("submit_plan", {"policy": "custom", "handle": handle,
                                        "tunables": {}, "rationale": "FIFO with idle fast path"},
                        use=usage(500, 900, cache_read=3000))

    fake_api.script = [
        tool_use("verify_source", {"source": BROKEN}, "Writing a scheduler.",
                 usage(1500, 800, cache_write=3000)),
        after_refusal, after_pass,
        end_turn("Deploy failed for lack of sched_ext; retry on a 6.12+ kernel.",
                 usage(700, 30, cache_write=400)),
    ]
    client = stack.client()
    tools = AgentTools(repo=repo, client=client)
    b = brain(fake_api, tools, reflect_lessons=True)
    steps: list[dict] = []
    t = time.perf_counter()
    try:
        result = OptimizationLoop(b, tools, BatchExecutor(["true"]),
                                  LoopConfig(goal="throughput"), threading.Event(),
                                  steps.append).run()
    finally:
        client.close()
    took = time.perf_counter() - t

    refusal = json.loads(seen["refusal"]["content"])
    assert not seen["refusal"]["is_error"]
    assert refusal["ok"] is False and refusal["failed_stage"] == "static"
    assert "without dispatching" in json.dumps(refusal["stages"])
    passed = json.loads(seen["pass"]["content"])
    assert passed["ok"] is True and passed["token"], passed
    assert {s["name"] for s in passed["stages"]} >= {"static", "kernel-verifier"}

    assert result.stop_reason == "environment" and "NoSchedExt" in result.message
    roles = [s["role"] for s in steps]
    assert roles == ["observation", "planning", "execution", "learning", "stop"]
    execution = steps[2]
    assert execution["error"] == "NoSchedExt" and execution["outcome"]["verified"] is True
    assert execution["outcome"]["plan"]["source"] == FIXED
    lesson = steps[3]["lesson"]
    assert lesson["outcome"] == "failed" and steps[3]["recorded"] is False
    assert "retry on a 6.12+ kernel" in lesson["note"]
    key = steps[0]["key"]
    assert repo.antipatterns(key) == [] and repo.history(key) == []
    json.dumps(steps)  # every step is JSON-able for the history view

    acct = result.accounting
    assert acct["roles"]["planning"]["calls"] == 3 and acct["roles"]["learning"]["calls"] == 1
    assert acct["total"]["cost_usd"] == pytest.approx(
        sum(cost(u) for u in [usage(1500, 800, cache_write=3000), usage(400, 700, cache_read=3000),
                              usage(500, 900, cache_read=3000), usage(700, 30, cache_write=400)]))
    print(f"refuse→fix→verify→deploy scenario: {took:.1f} s; cost ${acct['total']['cost_usd']:.5f}"
          f" (planning ${acct['roles']['planning']['cost_usd']:.5f}, learning "
          f"${acct['roles']['learning']['cost_usd']:.5f})")


def test_outcomes_flow_back_to_claude_across_iterations(fake_api, repo):
    """Iteration 1 configures ljf (the simulated helper makes it 30 % faster), iteration 2's
    brief carries that measurement; Claude then tries a preset that regresses, and ends. The
    best is kept, and the ledger grows per iteration."""
    from tests.app.agent.sim import SimExecutor, SimHelper

    preset = repo.get("ljf").presets["throughput"]
    helper = SimHelper({"ljf{}": 0.7, "ljf" + json.dumps(preset, sort_keys=True): 1.2})
    briefs: list[dict] = []

    def brief_then(reply):
        def answer(body):
            briefs.append(json.loads(body["messages"][0]["content"][0]["text"].split("\n")[0]))
            return reply
        return answer

    fake_api.script = [
        brief_then(tool_use("submit_plan", {"policy": "ljf", "rationale": "long tail"},
                            use=usage(1200, 90, cache_write=2500))),
        brief_then(tool_use("submit_plan", {"policy": "ljf", "tunables": preset,
                                            "rationale": "longer slices"},
                            use=usage(1400, 90, cache_read=2500))),
        brief_then(end_turn("Nothing better to try.", usage(1600, 20, cache_read=2500))),
    ]
    tools = AgentTools(repo=repo, client=helper)
    b = brain(fake_api, tools)
    result = OptimizationLoop(b, tools, SimExecutor(helper), LoopConfig(patience=5)).run()

    assert result.stop_reason == "exhausted" and result.iterations == 3
    assert briefs[0]["tried_this_run"] == [] and briefs[0]["baseline"]["makespan_s"] == 10.0
    first = briefs[1]["tried_this_run"][0]
    assert first["plan"]["policy"] == "ljf" and first["improvement"] == pytest.approx(0.3)
    assert briefs[2]["tried_this_run"][1]["improvement"] == pytest.approx(-0.2)
    assert briefs[2]["history"][-1]["outcome"] == "regressed"  # Learning recorded it
    assert helper.kept == "ljf{}" and result.best["improvement"] == pytest.approx(0.3)
    costs = [s["cost_usd"] for s in result.steps if s["role"] == "planning"]
    assert costs == sorted(costs) and costs[-1] == pytest.approx(result.accounting["total"][
        "cost_usd"])
    per_iteration = [b - a for a, b in zip([0.0, *costs], costs, strict=False)]
    print("fake API cost per planning iteration: "
          + ", ".join(f"${c:.5f}" for c in per_iteration))
