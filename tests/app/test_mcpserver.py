"""`schedcp mcp` through the mcp SDK's own client, in process: the tool list, real answers
from the policy repository, ToolError for what the user must see, and the helper behind it
(a generated scheduler refused at the static stage; a deploy refused for lack of sched_ext)."""

from __future__ import annotations

import asyncio
import json

from schedcp.agent.fixed import MEASURE_SPEC
from schedcp.agent.tools import SPECS, AgentTools
from schedcp.mcpserver import build_server

# the agent tests' fixtures: a real repository per test, the real private bus + helper
from tests.app.agent.conftest import embedder, repo, repo_path, seeded_db  # noqa: F401
from tests.app.agent.sources import BROKEN


def call_all(server, calls: list[tuple[str, dict]]):
    from mcp import Client

    async def go():
        async with Client(server) as c:
            listed = await c.list_tools()
            return listed, [await c.call_tool(name, args) for name, args in calls]

    return asyncio.run(go())


def payload(result) -> dict:
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_tools_listed_and_answered_from_the_repository(repo):  # noqa: F811
    server = build_server(AgentTools(repo=repo))
    listed, (search, entry, missing, bad) = call_all(server, [
        ("search_policies", {"query": "game stutters, input latency", "k": 3}),
        ("get_policy", {"name": "ljf"}),
        ("get_policy", {"name": "no_such_policy"}),
        ("record_lesson", {"workload_key": "k", "policy": "ljf", "outcome": "great"}),
    ])
    assert {t.name for t in listed.tools} == set(SPECS) | {MEASURE_SPEC.name}
    verify = next(t for t in listed.tools if t.name == "verify_source")
    assert verify.input_schema["required"] == ["source"]
    assert not search.is_error
    hits = payload(search)["hits"]
    direct = repo.search("game stutters, input latency", k=3)
    assert [h["name"] for h in hits] == [h.name for h in direct] and len(hits) == 3
    assert payload(entry)["presets"] == repo.get("ljf").presets
    assert missing.is_error and "no policy named 'no_such_policy'" in text(missing)
    assert bad.is_error and "improved|inconclusive" in text(bad)


def test_verify_and_deploy_go_through_the_helper(repo, stack):  # noqa: F811
    client = stack.client()
    try:
        server = build_server(AgentTools(repo=repo, client=client))
        _, (refused, deploy) = call_all(server, [
            ("verify_source", {"source": BROKEN}),
            ("deploy", {"token": "not-a-token", "canary_s": 5}),
        ])
    finally:
        client.close()
    report = payload(refused)
    assert not refused.is_error  # a refusal is a report, not an error
    assert report["ok"] is False and report["failed_stage"] == "static"
    assert "without dispatching" in json.dumps(report["stages"])
    assert deploy.is_error and "NoSchedExt: this kernel" in text(deploy)
    assert "built without CONFIG_SCHED_CLASS_EXT" in text(deploy) or "older than" in text(deploy)


def test_schedcp_mcp_speaks_stdio(tmp_path):
    """The real command: stdout carries only the protocol (a stray print would break it)."""
    import os
    import sys

    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "schedcp", "mcp"], env={
        **os.environ, "XDG_DATA_HOME": str(tmp_path), "SCHEDCP_EMBEDDER": "hash"})

    async def go():
        async with Client(params) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            return names, await c.call_tool("get_policy", {"name": "powersave"})

    names, entry = asyncio.run(go())
    assert names == set(SPECS) | {MEASURE_SPEC.name}
    assert not entry.is_error and payload(entry)["goals"] == ["battery"]
    assert (tmp_path / "schedcp" / "policies.db").is_file()  # XDG honoured: home untouched


def test_tools_are_described_annotated_and_errors_say_did_you_mean(repo):  # noqa: F811
    from mcp import Client

    from schedcp import __version__

    server = build_server(AgentTools(repo=repo))

    async def go():
        async with Client(server) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            typo = await c.call_tool("get_policy", {"name": "ljff"})
            detail = await c.call_tool("details", {"what": "process_tre", "pid": 1})
            return c.server_info, tools, typo, detail

    info, tools, typo, detail = asyncio.run(go())
    assert info.name == "schedcp" and info.version == __version__
    for name, spec in [*SPECS.items(), (MEASURE_SPEC.name, MEASURE_SPEC)]:
        t = tools[name]
        assert "Takes:" in t.description and "Side effects:" in t.description
        assert "Example:" in t.description and len(t.description) > 80
        a = t.annotations
        assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint) == (
            spec.read_only, spec.destructive, spec.idempotent)
        for pname, prop in t.input_schema["properties"].items():
            assert prop.get("description"), f"{name}.{pname} has no description"
    assert tools["get_policy"].annotations.read_only_hint
    assert all(tools[n].annotations.destructive_hint for n in ("deploy", "switch", "revert"))
    assert "boots a micro-VM" in tools["verify_source"].description
    assert tools["details"].input_schema["properties"]["what"]["enum"][0] == "process_tree"
    assert tools["workload_profile"].input_schema["properties"]["goal"]["enum"] == [
        "responsiveness", "throughput", "battery", "balanced"]
    assert typo.is_error and "did you mean 'ljf'" in text(typo)
    assert text(typo).count("NotFound") == 1
    # a validation error from the SDK (the enum) or ours: either way one prefix, and a hint
    assert detail.is_error and "process_tree" in text(detail)
    assert "ValueError: ValueError" not in text(detail)


def test_installed_schedulers_and_deployment_status_ask_the_helper(repo, stack):  # noqa: F811
    client = stack.client()
    try:
        server = build_server(AgentTools(repo=repo, client=client))
        _, (installed, status, missing) = call_all(server, [
            ("installed_schedulers", {}),
            ("deployment_status", {}),
            ("deployment_status", {"id": "000000000000"}),
        ])
        direct = {s["name"] for s in client.list_schedulers()}
    finally:
        client.close()
    rows = {r["name"]: r for r in payload(installed)["schedulers"]}
    assert set(rows) == direct and {"ljf", "fifo"} <= set(rows)
    assert rows["ljf"]["available"] and rows["ljf"]["kind"] == "bpf"
    assert rows["ljf"]["summary"] == repo.get("ljf").summary
    st = payload(status)
    assert st["sched_ext"]["supported"] is False  # this host: no sched_ext
    assert st["running"] is False and st["output"] == ""
    assert st["others"] == {"others": "no sched_ext in this kernel"}  # issue 17's line
    assert missing.is_error and "NotFound: no deployment '000000000000'" in text(missing)


def test_measure_plan_runs_the_loops_trials_and_reports_progress(repo):  # noqa: F811
    """measure_plan over MCP: the loop's own A/B trial set on a simulated helper (a known
    -20 % effect with noise), a progress notification per run, the effect in words."""
    from mcp import Client

    from tests.app.agent.sim import SimHelper
    from tests.app.agent.test_fixed import Noisy

    helper = SimHelper({"ljf{}": 0.8})
    server = build_server(AgentTools(repo=repo, client=helper),
                          executor_factory=lambda **kw: Noisy(helper))
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    async def go():
        async with Client(server) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            res = await c.call_tool("measure_plan", {"command": ["crunch"], "policy": "ljf"},
                                    progress_callback=on_progress)
            return tools, res

    tools, res = asyncio.run(go())
    assert tools["measure_plan"].annotations.destructive_hint
    assert "ctx" not in tools["measure_plan"].input_schema["properties"]
    assert not res.is_error, text(res)
    out = payload(res)
    assert out["decision"] == "improved" and "runs)" in out["effect"]
    n = out["evidence"]["n_a"] + out["evidence"]["n_b"]
    assert len(progress) == n and progress[0][0] == 1 and progress[-1][0] == n
    assert all(m and m.startswith("trial ") for _, _, m in progress)
    assert out["kept"] is None and helper.running is None


def test_measure_plan_without_sched_ext_runs_nothing(repo, stack, tmp_path):  # noqa: F811
    """The real helper on this host (no sched_ext): refused before the workload's warm-up."""
    marker = tmp_path / "ran"
    client = stack.client()
    try:
        server = build_server(AgentTools(repo=repo, client=client))
        _, (res,) = call_all(server, [("measure_plan", {
            "command": ["sh", "-c", f"touch {marker}"], "policy": "ljf"})])
    finally:
        client.close()
    assert res.is_error and "NoSchedExt" in text(res)
    assert not marker.exists()
