"""`schedcp status|list|verify|deploy|keep|revert|history`: the helper's operations for a user.

Unprivileged: everything goes through the root helper on the system bus (``client.py``), which
asks polkit. ``--json`` prints machine-readable output; errors are one line with a hint, exit
statuses from schedcp.exitcodes (3 helper absent, 4 not authorized, 5 no sched_ext, 6 another
tool's scheduler is attached: --take-over, 7 suspended after an ejection: --resume, 1 else).

A deployment is held by the process that made it: ``schedcp deploy`` stays attached through the
canary and, unless ``--keep``, until Ctrl-C (→ revert) or ``schedcp keep ID`` from elsewhere.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from ..exitcodes import Exit, for_error
from ..vocabulary import DEFAULT_SCHEDULER, PREVIOUS
from .args import assignment, command, positive_float, positive_int, running_pid


def _pairs(items: list[str]) -> dict[str, int | bool | str]:
    return dict(assignment(item, "--set") for item in items)


def _client():
    from ..client import HelperClient

    return HelperClient()


def _print(args, data, text: str) -> None:
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else text)


def others_text(st: dict) -> str:
    """Who holds the CPU scheduler and what else tunes it (older helpers say nothing)."""
    text = f"\nCPU scheduler: {st['others']}" if st.get("others") else ""
    if st.get("taken_over"):
        text += f"\ntaken over (given back afterwards): {st['taken_over']}"
    if st.get("given_back"):
        text += f"\nlast give-back: {st['given_back']}"
    if st.get("conflict"):
        text += f"\nconflict: {st['conflict']}"
    try:
        held = json.loads(st.get("suspended") or "[]")
    except ValueError:
        held = []
    for h in held if isinstance(held, list) else []:
        if isinstance(h, dict):
            text += (f"\nsuspended: {h.get('name', '?')}: {h.get('reason', '')} "
                     "(run it again with --resume)")
    return text


def cmd_status(args) -> int:
    with _client() as c:
        st = c.status()
    if not st["supported"]:
        from ..missing import no_sched_ext_short

        text = f"sched_ext: not supported: {no_sched_ext_short()}"
    else:
        text = f"sched_ext: {st['state'] or 'unknown'}" + (f" ({st['ops']})" if st["ops"] else "")
    if st["deployment"]:
        text += (f"\ndeployment {st['deployment']}: {st['deployment_kind']} "
                 f"{st['deployment_name']} [{st['deployment_state']}]")
    text += f"\nundo goes back to {PREVIOUS}: " + (
        f"{st['last_known_good_kind']} {st['last_known_good']}" if st["last_known_good"]
        else DEFAULT_SCHEDULER)
    text += others_text(st)
    _print(args, st, text)
    return Exit.OK


def cmd_list(args) -> int:
    with _client() as c:
        rows = c.list_schedulers()
    lines = []
    for r in rows:
        mark = "verified" if r["verified"] else ("available" if r["available"] else "missing")
        lines.append(f"{r['name']:14} {r['kind']:3} {mark:9} {r['summary']}")
    _print(args, rows, "\n".join(lines))
    return Exit.OK


def cmd_verify(args) -> int:
    def progress(stage: str, msg: str) -> None:
        if not args.json:
            print(f"[{stage}] {msg}", file=sys.stderr, flush=True)

    tunables = _pairs(args.set)
    with _client() as c:
        if args.policy:
            report = c.verify_policy(args.policy, tunables, progress)
        else:
            path = Path(args.source)
            src = sys.stdin.buffer.read() if args.source == "-" else path.read_bytes()
            name = "stdin" if args.source == "-" else path.name.split(".")[0]
            report = c.verify_source(src, name, tunables, progress)
    lines = [f"{report['name']} ({(report['artifact'] or 'no artifact')[:12]})"]
    for s in report["stages"]:
        lines.append(f"  {s['name']:16} {s['verdict']:7} {s['seconds']:6.2f}s  {s['message']}")
    if report["ok"]:
        lines.append(f"  => verified; deploy with:\n  schedcp deploy {report['token']}")
    else:
        lines.append(f"  => refused at {report['failed_stage']}")
    _print(args, report, "\n".join(lines))
    return Exit.OK if report["ok"] else Exit.FAILED


def cmd_deploy(args) -> int:
    canary: dict = {"window_s": float(args.canary)}
    if args.target_pid:
        canary["target_pids"] = args.target_pid
    if args.take_over:
        canary["take_over"] = True
    if args.resume:
        canary["resume"] = True
    done = threading.Event()
    outcome: dict = {}
    with _client() as c:
        dep_id = ""

        def on_signal(s) -> None:
            if s.member == "DeploymentChanged" and s.args[0] == dep_id:
                outcome["state"] = s.args[1]
                if not args.json:
                    print(f"deployment {dep_id}: {s.args[1]}", file=sys.stderr, flush=True)
                if s.args[1] in ("passed", "kept", "reverted", "failed", "replaced"):
                    done.set()
            elif s.member == "Reverted" and s.args[0] == dep_id:
                outcome["reason"] = s.args[1]

        def on_gone(err) -> None:  # the helper died: its deployment went with it
            outcome["gone"] = err
            done.set()

        c.subscribe(on_signal)
        c.on_gone(on_gone)
        dep_id = c.switch(args.token, _pairs(args.set), canary) if args.scx else c.deploy(
            args.token, canary)
        if not args.json:
            print(f"deployed {dep_id}; canary {args.canary:g} s", file=sys.stderr, flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        while True:
            done.wait()
            if "gone" in outcome:
                break
            if outcome.get("state") == "passed" and args.keep:
                outcome["state"] = c.keep(dep_id)
            elif outcome.get("state") == "passed":
                if not args.json:
                    print(f"canary passed; holding it: `schedcp keep {dep_id}` to keep, Ctrl-C "
                          "to revert", file=sys.stderr, flush=True)
                done.clear()
                done.wait()
                if "gone" not in outcome and outcome.get("state") == "passed":
                    outcome["state"] = c.revert(dep_id, "released by schedcp deploy")
            elif outcome.get("state") in (None, "canary"):  # interrupted during the canary
                outcome["state"] = c.revert(dep_id, "interrupted")
            break
    if "gone" in outcome:
        err = outcome["gone"]
        err.message = f"deployment {dep_id}: {err.message}"
        raise err
    result = {"id": dep_id, **outcome}
    _print(args, result, f"{dep_id}: {outcome.get('state')}"
           + (f" ({outcome['reason']})" if outcome.get("reason") else ""))
    return Exit.OK if outcome.get("state") in ("kept", "passed") else Exit.FAILED


def cmd_keep(args) -> int:
    with _client() as c:
        state = c.keep(args.id)
    _print(args, {"id": args.id, "state": state}, f"{args.id}: {state}")
    return Exit.OK


def cmd_revert(args) -> int:
    with _client() as c:
        state = c.revert(args.id or "", args.reason)
    _print(args, {"id": args.id or "", "state": state}, f"{args.id or 'current'}: {state}")
    return Exit.OK


STATE_WORDS = {"reverted": "undone", "canary": "on trial", "passed": "trial passed"}


def _history_line(d: dict) -> str:
    """One deployment in the vocabulary's words; the helper's own wording stays in --json."""
    from ..vocabulary import plain_reason

    head = (f"{d['id']} {d['spec']['kind']:3} {d['spec']['name']:14} "
            f"{STATE_WORDS.get(d['state'], d['state']):12}")
    return (f"{head} {plain_reason(d['reason'])[0]}" if d["reason"] else head).rstrip()


def cmd_history(args) -> int:
    with _client() as c:
        rows = c.history(args.limit)
    lines = [_history_line(d) for d in rows]
    _print(args, rows, "\n".join(lines) or "no deployments yet")
    return Exit.OK


def run(func, args) -> int:
    from ..client import HelperError

    try:
        return func(args)
    except HelperError as e:
        print(f"schedcp {args.command}: {e}", file=sys.stderr)
        return for_error(type(e).__name__)
    except ValueError as e:  # bad --set and the like: nothing was sent
        print(f"schedcp {args.command}: error: {e}", file=sys.stderr)
        return Exit.USAGE
    except OSError as e:
        print(f"schedcp {args.command}: {e}", file=sys.stderr)
        return Exit.FAILED


def register(sub: argparse._SubParsersAction) -> None:
    def add(name: str, func, summary: str, description: str = "",
            examples: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        p = command(sub, name, summary, description, examples)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=lambda a: run(func, a))
        return p

    add("status", cmd_status, "whether this machine can switch schedulers, and what runs",
        "Whether the kernel has sched_ext, which scheduler runs (and whether it is still on "
        f"trial), and what undo goes back to ({PREVIOUS}).",
        ("schedcp status", "schedcp status --json"))
    add("list", cmd_list, "schedulers the helper can run",
        "Every scheduler the helper knows: SchedCP's own BPF policies and packaged scx_* "
        "programs, marked verified, available or missing (not installed).",
        ("schedcp list",))
    v = add("verify", cmd_verify, "check a scheduler in the sandbox; prints a token",
            "Compile and check a shipped policy or your own .bpf.c in the helper's sandbox "
            "(compile, static checks, the kernel verifier and a short run in a micro-VM, "
            "~20 s or more). A scheduler that passes gets a token for `schedcp deploy`.",
            ("schedcp verify --policy vtime --set slice_us=3000",
             "schedcp verify --source my_sched.bpf.c"))
    g = v.add_mutually_exclusive_group(required=True)
    g.add_argument("--policy", help="one of the shipped policies (see `schedcp list`)")
    g.add_argument("--source", help="a .bpf.c file ('-' for stdin)")
    v.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a tunable (repeatable)")
    d = add("deploy", cmd_deploy, "run a verified scheduler on trial (canary)",
            "Deploy a verified token (or --scx NAME) with a canary; stays attached: the "
            "deployment is undone if this exits before it is kept. Needs sched_ext.",
            ("schedcp deploy TOKEN --keep", "schedcp deploy --scx scx_lavd --canary 20"))
    d.add_argument("token", help="token from `schedcp verify` (or the scx policy with --scx)")
    d.add_argument("--scx", action="store_true", help="TOKEN names a packaged scx_* policy")
    d.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="tunable for --scx (repeatable)")
    d.add_argument("--canary", type=positive_float, default=10.0,
                   help="seconds on trial before it counts as passed")
    d.add_argument("--target-pid", type=running_pid, action="append",
                   help="watch this process (repeatable)")
    d.add_argument("--keep", action="store_true", help="keep it when the canary passes")
    d.add_argument("--take-over", action="store_true",
                   help="another tool's scheduler runs (scx_loader, scx.service): stop it for "
                   "this deployment and give it back afterwards (an unknown owner needs an "
                   "administrator)")
    d.add_argument("--resume", action="store_true",
                   help="run a scheduler the kernel ejected before (it is suspended until then)")
    k = add("keep", cmd_keep, "keep a scheduler that is on trial",
            "Keep a deployment that is on canary or passed it: undo will then come back to it.",
            ("schedcp keep 3f2a9c",))
    k.add_argument("id", help="deployment id (from `schedcp status` or `schedcp history`)")
    r = add("revert", cmd_revert, f"undo: go back to {PREVIOUS}",
            f"Undo a deployment: go back to {PREVIOUS} (or {DEFAULT_SCHEDULER}).",
            ("schedcp revert", "schedcp revert 3f2a9c --reason 'stutters'"))
    r.add_argument("id", nargs="?", help="deployment id (default: whatever runs)")
    r.add_argument("--reason", default="requested from the command line",
                   help="recorded in the history")
    h = add("history", cmd_history, "what was tried, kept and undone",
            "Past deployments, newest first, with their state and why they ended.",
            ("schedcp history --limit 10", "schedcp history --json"))
    h.add_argument("--limit", type=positive_int, default=50, help="at most this many rows")
