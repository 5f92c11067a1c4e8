"""The OpenAI-compatible brain (a local model: Ollama, llama.cpp's server) driven by the REAL
``openai`` client against a local server speaking Chat Completions: the same tools as
function tools, real tool results from the repository, a handle for generated code, tokens
counted without dollars (or with a given price), the token budget, and a "length" stop named."""

from __future__ import annotations

import json

import pytest

from schedcp.agent.brain import BudgetExceeded
from schedcp.agent.openai_compat import OpenAIBrain
from schedcp.agent.tools import AgentTools, specs_for
from schedcp.pricing import Price
from tests.app.agent.fakeapi import (
    FakeChatCompletionsAPI,
    chat_message,
    chat_tool_call,
)
from tests.app.agent.test_claude import batch_ctx


@pytest.fixture
def local_api():
    api = FakeChatCompletionsAPI()
    api.start()
    yield api
    api.stop()


def brain(api, tools, **kw) -> OpenAIBrain:
    import openai

    client = openai.OpenAI(base_url=api.url + "/v1", api_key="local", max_retries=0)
    return OpenAIBrain(tools, model="qwen3:8b", client=client, **kw)


def test_tool_loop_over_chat_completions(local_api, repo):
    local_api.script = [
        chat_tool_call("search_policies", {"query": "batch jobs with a long tail", "k": 3},
                       prompt=1800, completion=60),
        chat_tool_call("get_policy", {"name": "ljf"}, prompt=2400, completion=40, cached=1800),
        chat_tool_call("submit_plan", {"policy": "ljf", "tunables": {"slice_us": 25000},
                                       "rationale": "long tail"}, prompt=3900, completion=50,
                       cached=2400),
    ]
    b = brain(local_api, AgentTools(repo=repo))
    plan = b.plan(batch_ctx(repo))
    assert (plan.policy, plan.tunables, plan.brain) == ("ljf", {"slice_us": 25000}, "openai")

    first, second, third = local_api.requests
    assert first["model"] == "qwen3:8b" and first["messages"][0]["role"] == "system"
    assert "schedcp_dispatch(" in first["messages"][0]["content"]
    names = [t["function"]["name"] for t in first["tools"]]
    assert names == [s.name for s in specs_for("planning")] + ["submit_plan"]
    search = first["tools"][0]["function"]
    assert "Takes:" in search["description"] and search["parameters"]["properties"]["query"][
        "description"]
    # the assistant's call is echoed, then the real repository's answer as a tool message
    call, result = second["messages"][2], second["messages"][3]
    assert call["role"] == "assistant" and call["tool_calls"][0]["function"]["name"] == (
        "search_policies")
    assert result["role"] == "tool" and result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert json.loads(result["content"])["hits"][0]["name"] == "ljf"
    assert json.loads(third["messages"][-1]["content"])["presets"] == repo.get("ljf").presets

    acct = b.accounting()
    assert acct["priced"] is False and acct["total"]["cost_usd"] == 0.0
    row = acct["roles"]["planning"]
    assert row["calls"] == 3 and row["output_tokens"] == 150
    assert row["cache_read_input_tokens"] == 4200
    assert row["input_tokens"] == 1800 + 600 + 1500


def test_bad_arguments_and_unknown_handles_go_back_to_the_model(local_api, repo):
    tools = AgentTools(repo=repo)
    tools.sources["gen_00000000aa"] = "#include \"schedcp.bpf.h\"\n"
    local_api.script = [chat_tool_call("get_policy", "{not json"),
                        chat_tool_call("submit_plan", {"policy": "custom", "handle": "gen_x",
                                                       "rationale": "r"}),
                        chat_tool_call("submit_plan", {"policy": "custom",
                                                       "handle": "gen_00000000aa",
                                                       "rationale": "r"})]
    plan = brain(local_api, tools).plan(batch_ctx(repo))
    assert plan.source == "#include \"schedcp.bpf.h\"\n" and plan.policy == "custom"
    bad_json = json.loads(local_api.requests[1]["messages"][-1]["content"])
    assert bad_json["kind"] == "InvalidArgs" and "JSON object" in bad_json["error"]
    bad_handle = json.loads(local_api.requests[2]["messages"][-1]["content"])
    assert "unknown handle 'gen_x'" in bad_handle["error"]


def test_length_stop_is_named_and_budgets_hold(local_api, repo):
    local_api.script = [chat_message({"role": "assistant", "content": "#include ..."},
                                     "length", 1000, 8192)]
    b = brain(local_api, AgentTools(repo=repo))
    assert b.plan(batch_ctx(repo)) is None and b.no_plan[0] == "max_tokens"

    local_api.script = [chat_tool_call("search_policies", {"query": "batch"}, prompt=5000,
                                       completion=1000)]
    b = brain(local_api, AgentTools(repo=repo), budget_tokens=4000)
    with pytest.raises(BudgetExceeded, match="token budget spent: 6000 of 4000"):
        b.plan(batch_ctx(repo))

    local_api.script = [chat_tool_call("submit_plan", {"policy": "ljf", "rationale": "x"},
                                       prompt=1_000_000, completion=100_000)]
    b = brain(local_api, AgentTools(repo=repo), price=Price.parse("0.1,0.4"))
    b.plan(batch_ctx(repo))
    assert b.accounting()["total"]["cost_usd"] == pytest.approx(0.1 + 0.04)
