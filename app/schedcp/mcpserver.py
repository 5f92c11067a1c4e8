"""`schedcp mcp`: the agent's tools for any MCP client (stdio, mcp SDK 2.x ``MCPServer``).

The same functions the offline planner and the Claude brain use (``schedcp.agent.tools``);
a failure the client should see becomes ``ToolError`` with the one-line message. Nothing here
prints to stdout: on stdio that is the protocol channel. Blocking calls (verification runs a
VM, measurement sleeps) go to a worker thread so the server keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .agent.tools import SPECS, AgentTools, ToolFailure

log = logging.getLogger("schedcp.mcp")

INSTRUCTIONS = """SchedCP: application-aware CPU scheduling with sched_ext. Observe the workload
(system_summary, workload_profile, details, feedback), find a scheduler (search_policies,
get_policy, list_primitives, workload_history), check it (verify_policy, verify_source: a refusal
says which stage and why), run it (deploy a verified token or switch to a packaged scx_*
scheduler; both start with a canary), then keep or revert it and record_lesson."""


def build_server(tools: AgentTools | None = None):
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    tools = tools or AgentTools()
    server = MCPServer("schedcp", instructions=INSTRUCTIONS)

    async def call(name: str, /, **args: Any) -> dict[str, Any]:
        args = {k: v for k, v in args.items() if v is not None}
        try:
            result = await asyncio.to_thread(tools.call, name, args)
        except ToolFailure as e:
            raise ToolError(f"{e.kind + ': ' if e.kind else ''}{e}") from None
        return result if isinstance(result, dict) else {"result": result}

    def add(fn) -> None:
        server.add_tool(fn, name=fn.__name__, description=SPECS[fn.__name__].description)

    async def system_summary(sample_s: float = 0.5) -> dict[str, Any]:
        return await call("system_summary", sample_s=sample_s)

    async def workload_profile(pid: int, goal: str = "balanced") -> dict[str, Any]:
        return await call("workload_profile", pid=pid, goal=goal)

    async def details(what: str, pid: int | None = None, seconds: float = 1.0
                      ) -> dict[str, Any]:
        return await call("details", what=what, pid=pid, seconds=seconds)

    async def feedback(pids: list[int], seconds: float = 2.0) -> dict[str, Any]:
        return await call("feedback", pids=pids, seconds=seconds)

    async def search_policies(query: str, k: int = 5, kind: str | None = None,
                              goal: str | None = None) -> dict[str, Any]:
        return await call("search_policies", query=query, k=k, kind=kind, goal=goal)

    async def get_policy(name: str) -> dict[str, Any]:
        return await call("get_policy", name=name)

    async def list_primitives() -> dict[str, Any]:
        return await call("list_primitives")

    async def workload_history(workload_key: str) -> dict[str, Any]:
        return await call("workload_history", workload_key=workload_key)

    async def verify_policy(name: str, tunables: dict[str, Any] | None = None
                            ) -> dict[str, Any]:
        return await call("verify_policy", name=name, tunables=tunables)

    async def verify_source(source: str, tunables: dict[str, Any] | None = None
                            ) -> dict[str, Any]:
        return await call("verify_source", source=source, tunables=tunables)

    async def deploy(token: str, canary_s: float = 10.0, target_pids: list[int] | None = None
                     ) -> dict[str, Any]:
        return await call("deploy", token=token, canary_s=canary_s, target_pids=target_pids)

    async def switch(name: str, tunables: dict[str, Any] | None = None, canary_s: float = 10.0,
                     target_pids: list[int] | None = None) -> dict[str, Any]:
        return await call("switch", name=name, tunables=tunables, canary_s=canary_s,
                          target_pids=target_pids)

    async def update_hints(id: str, hints: dict[str, int]) -> dict[str, Any]:
        return await call("update_hints", id=id, hints=hints)

    async def expect_forks(id: str, parent: int, runtimes: list[int]) -> dict[str, Any]:
        return await call("expect_forks", id=id, parent=parent, runtimes=runtimes)

    async def keep(id: str) -> dict[str, Any]:
        return await call("keep", id=id)

    async def revert(id: str = "", reason: str = "") -> dict[str, Any]:
        return await call("revert", id=id, reason=reason)

    async def helper_status() -> dict[str, Any]:
        return await call("helper_status")

    async def record_lesson(workload_key: str, policy: str, outcome: str,
                            tunables: dict[str, Any] | None = None, score: float | None = None,
                            note: str = "") -> dict[str, Any]:
        return await call("record_lesson", workload_key=workload_key, policy=policy,
                          outcome=outcome, tunables=tunables, score=score, note=note)

    for fn in (system_summary, workload_profile, details, feedback, search_policies,
               get_policy, list_primitives, workload_history, verify_policy, verify_source,
               deploy, switch, update_hints, expect_forks, keep, revert, helper_status,
               record_lesson):
        add(fn)
    server.schedcp_tools = tools  # the caller closes them
    return server


def serve() -> int:
    """Run on stdio until the client goes away. Logs go to stderr, never stdout."""
    logging.basicConfig(level=logging.WARNING, format="schedcp mcp: %(message)s")
    server = build_server()
    try:
        server.run("stdio")
    finally:
        server.schedcp_tools.close()
    return 0
