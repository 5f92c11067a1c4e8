"""ClaudeBrain on current models, through the REAL anthropic SDK and the local fake Messages
API: thinking and redacted-thinking blocks go back verbatim, a ``max_tokens`` stop and a
``pause_turn`` are handled and named (not "nothing to try"), ``verify_source``'s handle stands
for the code in ``submit_plan``, and no tool result is ever cut into invalid JSON."""

from __future__ import annotations

import json

import pytest

from schedcp.agent.claude import MAX_NONSTREAMING_TOKENS
from schedcp.agent.loop import LoopConfig, OptimizationLoop
from schedcp.agent.tools import AgentTools
from schedcp.model import Metrics
from tests.app.agent.fakeapi import (
    end_turn,
    message,
    redacted,
    thinking,
    thought_tool_use,
    tool_use,
    usage,
)
from tests.app.agent.test_claude import batch_ctx, brain


def test_thinking_blocks_are_replayed_verbatim_with_a_deliberate_effort(fake_api, repo):
    t1, r1 = thinking("The tail is long: ljf fits. Check its presets."), redacted()
    t2 = thinking("Preset throughput uses 25 ms slices.")
    fake_api.script = [
        thought_tool_use("get_policy", {"name": "ljf"}, [t1, r1], usage(1500, 400)),
        thought_tool_use("submit_plan", {"policy": "ljf", "rationale": "long tail"}, [t2]),
    ]
    b = brain(fake_api, AgentTools(repo=repo))
    plan = b.plan(batch_ctx(repo))
    assert plan is not None and plan.policy == "ljf"

    first, second = fake_api.requests
    for r in (first, second):
        assert r["thinking"] == {"type": "adaptive"}
        assert r["output_config"] == {"effort": "medium"}
        assert r["max_tokens"] == 16_000 <= MAX_NONSTREAMING_TOKENS
    assistant = second["messages"][1]
    assert assistant["role"] == "assistant"
    # exactly as received, in order, signatures and opaque data intact, no cache marks
    assert assistant["content"][0] == t1 and assistant["content"][1] == r1
    assert assistant["content"][2]["type"] == "tool_use"
    assert b.traces[-1]["thinking_blocks"] == 3
    # the moving cache breakpoint sits on the tool result, never on a thinking block
    assert second["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    print("transcript (request 2, assistant turn replayed):\n"
          + json.dumps(assistant["content"], indent=1)[:900])


def test_older_models_get_a_manual_thinking_budget(fake_api, repo):
    fake_api.script = [tool_use("submit_plan", {"policy": "ljf", "rationale": "x"})]
    brain(fake_api, AgentTools(repo=repo), model="claude-haiku-4-5",
          thinking_budget=5000).plan(batch_ctx(repo))
    r = fake_api.requests[0]
    assert r["thinking"] == {"type": "enabled", "budget_tokens": 5000}
    assert "output_config" not in r and r["max_tokens"] > 5000


def test_max_tokens_stop_is_named_and_stops_the_loop_with_that_reason(fake_api, repo):
    cut = message([thinking("Writing the scheduler... " * 20),
                   {"type": "text", "text": "#include \"schedcp.bpf.h\"\nvoid BPF_STR"}],
                  "max_tokens", usage(2000, 16_000))
    fake_api.script = [cut]

    class Fixed:
        target_pids = ()

        def observe(self, goal):
            return batch_ctx(repo).profile, Metrics(makespan_s=12.0)

        def measure(self):
            raise AssertionError("nothing runs without a plan")

    tools = AgentTools(repo=repo)
    b = brain(fake_api, tools)
    result = OptimizationLoop(b, tools, Fixed(), LoopConfig()).run()
    assert result.stop_reason == "max_tokens"
    assert "max_tokens=16000" in result.message and "nothing left" not in result.message
    assert b.traces[-1]["end"] == "max_tokens"
    assert len(fake_api.requests) == 1


def test_pause_turn_is_continued_with_the_paused_content(fake_api, repo):
    t = thinking("Long deliberation, paused by the server.")
    paused = message([t, {"type": "text", "text": "Still comparing ljf and vtime."}],
                     "pause_turn", usage(800, 300))
    fake_api.script = [paused, tool_use("submit_plan", {"policy": "vtime", "rationale": "x"})]
    b = brain(fake_api, AgentTools(repo=repo))
    plan = b.plan(batch_ctx(repo))
    assert plan is not None and plan.policy == "vtime"
    cont = fake_api.requests[1]["messages"]
    assert [m["role"] for m in cont] == ["user", "assistant"]  # no new user turn
    assert cont[1]["content"][0] == t
    assert cont[1]["content"][1]["text"] == "Still comparing ljf and vtime."

    # a model that keeps pausing: the stop is named pause_turn, not "nothing to try"
    fake_api.script = [paused, paused]
    b = brain(fake_api, AgentTools(repo=repo), max_turns=2)
    assert b.plan(batch_ctx(repo)) is None
    assert b.no_plan[0] == "pause_turn" and "pause_turn" in b.no_plan[1]


def test_submit_plan_refers_to_a_handle_not_the_code(fake_api, repo):
    tools = AgentTools(repo=repo)
    code = "#include \"schedcp.bpf.h\"\n/* generated */\n"
    handle = "gen_" + "0" * 10
    tools.sources[handle] = code  # what verify_source records (the VM test does it for real)
    seen: list[dict] = []

    def after_bad(body: dict) -> dict:
        seen.append(body["messages"][-1]["content"][0])
        return tool_use("submit_plan", {"policy": "custom", "handle": handle,
                                        "rationale": "fixed"})

    fake_api.script = [tool_use("submit_plan", {"policy": "custom", "handle": "gen_nope",
                                                "rationale": "try"}), after_bad]
    plan = brain(fake_api, tools).plan(batch_ctx(repo))
    assert seen[0]["is_error"] and "unknown handle 'gen_nope'" in seen[0]["content"]
    assert handle in seen[0]["content"]  # it says which handles exist
    assert plan.policy == "custom" and plan.source == code
    schema = fake_api.requests[0]["tools"][-1]
    assert schema["name"] == "submit_plan" and "handle" in schema["input_schema"]["properties"]
    assert "source" not in schema["input_schema"]["properties"]


def test_no_tool_result_is_cut_into_invalid_json(fake_api, repo):
    fake_api.script = [tool_use("get_policy", {"name": "ljf"}),
                       tool_use("list_primitives", {}),
                       end_turn("done")]
    b = brain(fake_api, AgentTools(repo=repo), max_result_chars=4000)
    b.plan(batch_ctx(repo))
    big = fake_api.requests[1]["messages"][-1]["content"][0]
    small = fake_api.requests[2]["messages"][-1]["content"][0]
    too_large = json.loads(big["content"])  # valid JSON, saying what to ask for instead
    assert too_large["kind"] == "TooLarge" and too_large["sizes"]["source"] > 1000
    prims = json.loads(small["content"])["primitives"]
    assert len(small["content"]) < 5000 and len(prims) >= 8
    assert all(p["summary"] and p["compose"] and "source" not in p for p in prims)
    print(f"list_primitives: {len(small['content'])} characters for {len(prims)} primitives")


@pytest.mark.parametrize("budget,expect_calls", [(0.005, 1), (1.0, 2)])
def test_budget_per_iteration(fake_api, repo, budget, expect_calls):
    fake_api.script = [tool_use("search_policies", {"query": "batch"}, use=usage(2000, 1000)),
                       tool_use("submit_plan", {"policy": "ljf", "rationale": "x"})]
    b = brain(fake_api, AgentTools(repo=repo), iteration_budget_usd=budget)
    plan = b.plan(batch_ctx(repo))
    assert len(fake_api.requests) == expect_calls
    if expect_calls == 1:
        assert plan is None and b.no_plan[0] == "iteration_budget"
        assert "$0.0140 of its $0.0050" in b.no_plan[1]
    else:
        assert plan.policy == "ljf" and b.no_plan is None
