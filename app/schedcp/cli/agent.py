"""`schedcp optimize` (the agent loop on a command or a running process) and `schedcp mcp`
(the same tools over MCP stdio).

The offline planner is the default brain: no key, no network. ``--brain claude`` takes the API
key from $ANTHROPIC_API_KEY or the keyring entry the tray stores (service "schedcp", user
"anthropic"). Ctrl-C cancels between steps; whatever runs is reverted unless it was the best.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import replace

from ..exitcodes import Exit, for_error
from ..vocabulary import DEFAULT_GOAL, GOALS, before_after_sentence, checking_text, metric_text
from .args import (
    assignment,
    command,
    fraction,
    nonnegative_int,
    positive_float,
    positive_int,
    program_problem,
    running_pid,
)
from .args import goal as goal_arg


def _api_key() -> str | None:
    key = os.environ.get("ANTHROPIC_API_KEY")
    if key:
        return key
    try:
        import keyring

        return keyring.get_password("schedcp", "anthropic")
    except Exception:  # no keyring backend: the caller says how to provide the key
        return None


def _line(step: dict, goal: str) -> str | None:
    role, it = step["role"], step["iteration"]
    if role == "observation":
        base = step["baseline"]
        return (f"[0] {step['profile']['kind']} workload ({step['key']}); warm-up run "
                f"{_metric(base, goal)} (not compared: candidates run interleaved A/B trials)")
    if role == "planning":  # say what the wait before the next line is, and how long
        plan = step.get("plan")
        if not plan:
            return None
        name = plan["policy"] + (" (generated)" if plan.get("source") else "")
        return f"[{it}] {checking_text(name)}; then A/B runs against what runs now"
    if role == "execution":
        oc = step["outcome"]
        plan = oc["plan"]
        name = plan["policy"] + (" (generated)" if plan.get("source") else "")
        tun = " ".join(f"{k}={v}" for k, v in sorted(plan["tunables"].items())) or "defaults"
        if not oc["verified"]:
            res = f"refused at {oc['refused_at']}: {oc['message']}"
        elif oc.get("trials"):  # the A/B trials' effect, with its interval
            res = step.get("effect") or _metric(oc["after"], goal)
            if oc["trials"].get("decision") in ("failed", "invalid"):
                res = f"{step.get('effect')}: {oc['message']}"
        elif oc["after"]:
            res = (before_after_sentence(oc.get("before"), oc["after"], goal)
                   or metric_text(oc["after"], goal))
        else:
            res = oc["message"]
        cost = f"  ${step['cost_usd']:.4f}" if "cost_usd" in step else ""
        return f"[{it}] {name} {tun}: {res}  {step['seconds']:.1f}s{cost}"
    if role == "trial":  # progress while an A/B trial set runs
        return f"    {step['line']}"
    if role == "stop":
        return f"stop: {step['message']}"
    return None


def _metric(m: dict | None, goal: str) -> str:
    return metric_text(m, goal) if m else "-"


def _preflight(tools, take_over: bool = False) -> tuple[int, str] | None:
    """What every plan needs — the helper, and sched_ext to deploy on — checked before the
    baseline run spends the user's time (an exit code from the exit table and why)."""
    from ..agent.tools import ToolFailure
    from ..missing import no_sched_ext_short

    try:
        status = tools.helper_status()
    except ToolFailure as e:
        return for_error(e.kind), f"cannot ask the SchedCP helper: {e}"
    if not status.get("supported"):
        return Exit.NO_SCHED_EXT, f"nothing was run: {no_sched_ext_short()}"
    if status.get("attached_owner") not in (None, "", "schedcp") and not take_over:
        return Exit.OTHER_SCHEDULER, (
            f"{status.get('others') or 'another tool'} holds the CPU scheduler and SchedCP "
            "does not replace it silently; nothing was run. Leave it, or rerun with "
            "--take-over: it is stopped for this optimization and given back afterwards")
    return None


def cmd_optimize(args) -> int:
    from ..agent import AgentTools, BatchExecutor, LoopConfig, OfflinePlanner, OptimizationLoop
    from ..agent.executors import PidExecutor
    from ..agent.tools import ToolFailure
    from ..pricing import DEFAULT_MODEL

    cmd = list(args.cmd or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if bool(cmd) == (args.pid is not None):
        print("schedcp optimize: error: give either --pid PID or -- CMD... (see "
              "`schedcp optimize --help`)", file=sys.stderr)
        return Exit.USAGE
    if cmd and (problem := program_problem(cmd)):
        print(f"schedcp optimize: error: {problem}; nothing was run", file=sys.stderr)
        return Exit.USAGE
    goal = args.goal
    from ..pricing import Price

    try:
        price = Price.parse(args.price) if args.price else None
    except ValueError as e:
        print(f"schedcp optimize: --price: {e}", file=sys.stderr)
        return Exit.USAGE
    tools = AgentTools()
    if args.brain == "claude":
        from ..agent.claude import ClaudeBrain

        key = _api_key()
        if not key:
            print("schedcp optimize: --brain claude needs ANTHROPIC_API_KEY or a keyring "
                  "entry (service schedcp, user anthropic)", file=sys.stderr)
            return Exit.USAGE
        brain = ClaudeBrain(tools, key, model=args.model, budget_usd=args.budget, price=price,
                            iteration_budget_usd=args.iteration_budget, effort=args.effort)
    elif args.brain == "openai":
        from ..agent.openai_compat import OpenAIBrain

        try:
            import openai  # noqa: F401
        except ImportError:
            print("schedcp optimize: --brain openai needs the openai package "
                  "(pip install 'schedcp[local]')", file=sys.stderr)
            return Exit.USAGE

        if args.model == DEFAULT_MODEL:
            print("schedcp optimize: --brain openai needs --model (the local server's model "
                  "name, e.g. qwen3:8b)", file=sys.stderr)
            return Exit.USAGE
        brain = OpenAIBrain(tools, args.model, base_url=args.base_url,
                            api_key=os.environ.get("OPENAI_API_KEY", "local"),
                            budget_usd=args.budget, budget_tokens=args.budget_tokens,
                            price=price, iteration_budget_usd=args.iteration_budget)
    else:
        brain = OfflinePlanner(tools=tools)
    fixed = args.policy is not None or args.recheck
    if fixed:  # one plan (or the stored best), through the same loop: one A/B trial set
        from ..agent.fixed import FixedPlan
        from ..model import Plan

        if args.policy is not None and args.recheck:
            print("schedcp optimize: --policy and --recheck exclude each other", file=sys.stderr)
            tools.close()
            return Exit.USAGE
        try:
            tunables = dict(assignment(t, "--tunable") for t in args.tunable or ())
            if args.policy is not None:
                tools.call("get_policy", {"name": args.policy})
        except (ValueError, ToolFailure) as e:
            tools.close()
            print(f"schedcp optimize: {e}", file=sys.stderr)
            return Exit.USAGE
        brain = FixedPlan(Plan(args.policy, tunables, None, "--policy", "fixed")
                          if args.policy is not None else None)
    elif args.tunable:
        print("schedcp optimize: --tunable goes with --policy", file=sys.stderr)
        tools.close()
        return Exit.USAGE
    tools.take_over = bool(getattr(args, "take_over", False))
    if (problem := _preflight(tools, tools.take_over)) is not None:
        tools.close()
        print(f"schedcp optimize: {problem[1]}", file=sys.stderr)
        return problem[0]
    executor = (BatchExecutor(cmd, failure_pattern=args.fail_pattern) if cmd
                else PidExecutor(args.pid, args.seconds))
    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: cancel.set())

    def show(step: dict) -> None:
        if args.json:
            print(json.dumps(step, sort_keys=True), flush=True)
        elif (line := _line(step, goal)) is not None:
            print(line, flush=True)

    from ..measure.trials import StopRule

    rule = StopRule.for_goal(goal)
    if args.trial_budget is not None:
        rule = replace(rule, budget_s=args.trial_budget)
    cfg = LoopConfig(goal=goal, max_iterations=1 if fixed else args.max_iterations,
                     patience=args.patience,
                     target=args.target, canary_s=args.canary, rule=rule)
    try:
        result = OptimizationLoop(brain, tools, executor, cfg, cancel, show).run()
    finally:
        tools.close()
    if not args.json and result.accounting:
        print(cost_line(result.accounting, result.iterations))
    if result.stop_reason == "environment":  # the machine, not the plan: the same status as
        return Exit.NO_SCHED_EXT              # the preflight's
    if result.stop_reason == "cancelled":
        return Exit.INTERRUPTED
    return Exit.OK if result.stop_reason in ("converged", "target", "max_iterations",
                                             "exhausted", "budget") else Exit.FAILED


def cost_line(acct: dict, iterations: int) -> str:
    """Tokens always; dollars (total and per iteration) only when the model has a price."""
    total = acct["total"]
    tokens = (f"{int(total['input_tokens'])} in, {int(total['output_tokens'])} out, "
              f"{int(total['cache_read_input_tokens'])} cached")
    if not acct.get("priced", True):
        return f"cost: unknown (no price for {acct.get('model')}; --price IN,OUT): {tokens}"
    per = total["cost_usd"] / iterations if iterations else 0.0
    return f"cost: ${total['cost_usd']:.4f}, ${per:.4f} per iteration ({tokens})"


def cmd_mcp(args) -> int:
    from ..mcpserver import serve

    return serve()


def register(sub: argparse._SubParsersAction) -> None:
    from ..pricing import DEFAULT_LOCAL_URL, DEFAULT_MODEL

    o = command(sub, "optimize", "find the best scheduler for a program or a running app",
                "Measure a command (-- CMD...) or a running process (--pid), then try "
                "schedulers one by one: each is checked in a sandbox (~20 s), run on trial "
                "against what runs now in interleaved A/B runs, and kept only if the goal's "
                "number got better. Needs the SchedCP helper and a kernel with sched_ext; "
                "both are checked before anything runs. Ctrl-C stops between steps and undoes "
                "whatever is not the best.",
                ("schedcp optimize -- make -j4",
                 "schedcp optimize --goal responsiveness --pid $(pidof supertuxkart)",
                 "schedcp optimize --policy vtime --tunable slice_us=3000 -- ./batch.sh",
                 "schedcp optimize --recheck -- make -j4"))
    o.add_argument("--goal", type=goal_arg, default=DEFAULT_GOAL, metavar="GOAL",
                   help=f"what to improve: {', '.join(GOALS)} (latency = responsiveness)")
    o.add_argument("--pid", type=running_pid, help="optimize a running process (and its "
                   "children)")
    o.add_argument("--seconds", type=positive_float, default=5.0,
                   help="measurement window for --pid, s")
    o.add_argument("--brain", choices=("offline", "claude", "openai"), default="offline",
                   help="offline (no key), claude, or openai: any OpenAI-compatible server, "
                   "e.g. a local Ollama or llama.cpp")
    o.add_argument("--base-url", default=DEFAULT_LOCAL_URL,
                   help="endpoint for --brain openai (default: a local Ollama)")
    o.add_argument("--budget-tokens", type=positive_int, help="token cap per optimization "
                   "(the budget for models without a price)")
    o.add_argument("--model", default=DEFAULT_MODEL, help="model for --brain claude/openai "
                   f"(default for claude: {DEFAULT_MODEL})")
    o.add_argument("--budget", type=positive_float, default=0.50,
                   help="USD cap per optimization")
    o.add_argument("--iteration-budget", type=positive_float,
                   help="USD cap per planning iteration")
    o.add_argument("--price", metavar="IN,OUT[,CW,CR]", help="USD per million tokens (input, "
                   "output, cache write, cache read) for a model the built-in table lacks")
    o.add_argument("--effort", choices=("low", "medium", "high", "xhigh", "max"),
                   default="medium", help="how hard the model thinks (adaptive thinking)")
    o.add_argument("--max-iterations", type=positive_int, default=8,
                   help="schedulers to try at most")
    o.add_argument("--patience", type=nonnegative_int, default=3, help="stop after N "
                   "iterations without a new best")
    o.add_argument("--target", type=fraction, help="stop at this improvement (0.2 = 20 %%)")
    o.add_argument("--canary", type=positive_float, default=10.0,
                   help="seconds each scheduler is on trial before it counts")
    o.add_argument("--trial-budget", type=positive_float, metavar="S", help="seconds of A/B "
                   "trials one candidate may cost (caps the runs; default from the goal: "
                   "throughput 360, balanced/battery 240, responsiveness 90)")
    o.add_argument("--fail-pattern", metavar="REGEX", help="a run whose output matches this "
                   "is a failed trial (a non-zero exit or a kill always is)")
    o.add_argument("--policy", metavar="NAME", help="measure this one scheduler (A/B trials "
                   "against what runs now) instead of searching; kept if it improves")
    o.add_argument("--tunable", action="append", metavar="K=V", help="a tunable for --policy "
                   "(repeatable)")
    o.add_argument("--recheck", action="store_true", help="re-measure the best stored for "
                   "this workload and say whether its effect still holds")
    o.add_argument("--take-over", action="store_true", help="another tool's scheduler runs "
                   "(scx_loader, scx.service): stop it for each candidate's runs and give it "
                   "back for the baseline's, so candidates are compared with what you ran")
    o.add_argument("--json", action="store_true", help="one JSON record per step")
    o.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...: a batch command")
    o.set_defaults(func=cmd_optimize)
    m = command(sub, "mcp", "serve the agent's tools over MCP (stdio)",
                "Serve SchedCP's tools (analyze, search policies, verify, deploy, undo, "
                "history) to an MCP client such as Claude Desktop over stdin/stdout.",
                ("schedcp mcp",))
    m.set_defaults(func=cmd_mcp)
