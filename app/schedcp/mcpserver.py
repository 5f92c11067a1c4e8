"""`schedcp mcp`: the agent's tools for any MCP client (stdio, mcp SDK 2.x ``MCPServer``).

The tool set is written once, in ``schedcp.agent.tools.SPECS``: every MCP tool here is derived
from its spec (name, the long description, parameter descriptions and enums, annotations) and
calls the same function the offline planner and the model brains use. A failure the client
should see becomes ``ToolError`` with a one-line "Kind: message". Nothing here prints to
stdout: on stdio that is the protocol channel. Blocking calls (verification runs a VM,
measurement sleeps) go to a worker thread so the server keeps answering.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Annotated, Any

from . import __version__
from .agent.fixed import MEASURE_SPEC, run_measure_tool
from .agent.tools import SPECS, AgentTools, ToolFailure, ToolSpec, error_text

log = logging.getLogger("schedcp.mcp")

INSTRUCTIONS = """SchedCP: application-aware CPU scheduling with sched_ext. Observe the workload
(system_summary, workload_profile, details, feedback), find a scheduler (search_policies,
get_policy, list_primitives, workload_history, installed_schedulers), check it (verify_policy,
verify_source: a refusal says which stage and why; verification boots a VM, about a minute),
run it (deploy a verified token or switch to a packaged scx_* scheduler; both start with a
canary), watch it (deployment_status), then keep or revert it and record_lesson. Or let
measure_plan do verify → deploy → A/B trials → lesson → keep/revert in one call, measured the way
SchedCP's own loop measures (it reports progress after every run)."""

_TYPES: dict[str, Any] = {"integer": int, "number": float, "string": str, "boolean": bool}


def _pytype(prop: dict) -> Any:
    """The Python type the mcp SDK turns back into this JSON schema (enums stay plain: our
    tools check them and answer with "did you mean", not a pydantic dump)."""
    kind = prop.get("type")
    if kind == "array":
        return list[_pytype(prop.get("items", {}))]
    if kind == "object":
        return dict[str, Any]
    return _TYPES.get(kind, Any)


def _signature(spec: ToolSpec) -> inspect.Signature:
    from pydantic import Field

    required = set(spec.schema.get("required", ()))
    params = []
    for name, prop in spec.schema["properties"].items():
        extra = {k: prop[k] for k in ("minimum", "maximum", "enum") if k in prop}
        field = Field(description=prop.get("description"),
                      json_schema_extra=extra or None)
        t = _pytype(prop)
        if name in required:
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                            annotation=Annotated[t, field]))
        else:
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                            default=prop.get("default"),
                                            annotation=Annotated[t | None, field]))
    return inspect.Signature(params, return_annotation=dict[str, Any])


def build_server(tools: AgentTools | None = None, executor_factory=None):
    """``executor_factory`` (tests): how measure_plan runs its workload, instead of the real
    BatchExecutor/PidExecutor."""
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    tools = tools or AgentTools()
    server = MCPServer("schedcp", instructions=INSTRUCTIONS, version=__version__)

    async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        args = {k: v for k, v in args.items() if v is not None}
        try:
            result = await asyncio.to_thread(tools.call, name, args)
        except ToolFailure as e:
            raise ToolError(error_text(e)) from None
        return result if isinstance(result, dict) else {"result": result}

    def wrapper(spec: ToolSpec):
        async def tool(**args: Any) -> dict[str, Any]:
            return await call(spec.name, args)

        tool.__name__ = spec.name
        tool.__signature__ = _signature(spec)  # type: ignore[attr-defined]
        return tool

    for spec in SPECS.values():
        server.add_tool(wrapper(spec), name=spec.name, description=spec.full_description(),
                        annotations=ToolAnnotations(**spec.annotations()))

    async def measure_plan(ctx: Context, **args: Any) -> dict[str, Any]:
        """Trials take minutes: every finished run is an MCP progress notification."""
        args = {k: v for k, v in args.items() if v is not None}
        loop = asyncio.get_running_loop()

        def on_step(step: dict) -> None:
            if step.get("role") == "trial":
                asyncio.run_coroutine_threadsafe(ctx.report_progress(
                    step["run"], step["max_runs"], step["line"]), loop)

        try:
            return await asyncio.to_thread(run_measure_tool, tools, args, executor_factory,
                                           on_step)
        except ToolFailure as e:
            raise ToolError(error_text(e)) from None

    sig = _signature(MEASURE_SPEC)
    measure_plan.__signature__ = sig.replace(parameters=[  # type: ignore[attr-defined]
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context),
        *sig.parameters.values()])
    measure_plan.__annotations__ = {"ctx": Context, "return": dict[str, Any]}
    server.add_tool(measure_plan, name=MEASURE_SPEC.name,
                    description=MEASURE_SPEC.full_description(),
                    annotations=ToolAnnotations(**MEASURE_SPEC.annotations()))
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
