"""`schedcp status|list|verify|deploy|keep|revert|history`: the helper's operations for a user.

Unprivileged: everything goes through the root helper on the system bus (``client.py``), which
asks polkit. ``--json`` prints machine-readable output; errors are one line with a hint and
exit status 3 (helper absent), 4 (not authorized), 5 (no sched_ext), 1 (anything else).

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

EXIT = {"HelperUnavailable": 3, "HelperGone": 3, "NotAuthorized": 4, "NoSchedExt": 5}


def _pairs(items: list[str]) -> dict[str, int | bool | str]:
    out: dict[str, int | bool | str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"schedcp: --set wants NAME=VALUE, got {item!r}")
        if value in ("true", "false"):
            out[key] = value == "true"
        else:
            try:
                out[key] = int(value, 0)
            except ValueError:
                out[key] = value
    return out


def _client():
    from .client import HelperClient

    return HelperClient()


def _print(args, data, text: str) -> None:
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else text)


def cmd_status(args) -> int:
    with _client() as c:
        st = c.status()
    if not st["supported"]:
        text = f"sched_ext: not supported by this kernel (verify targets {st['target']})"
    else:
        text = f"sched_ext: {st['state'] or 'unknown'}" + (f" ({st['ops']})" if st["ops"] else "")
    if st["deployment"]:
        text += (f"\ndeployment {st['deployment']}: {st['deployment_kind']} "
                 f"{st['deployment_name']} [{st['deployment_state']}]")
    text += "\nlast-known-good: " + (
        f"{st['last_known_good_kind']} {st['last_known_good']}" if st["last_known_good"]
        else "kernel default")
    _print(args, st, text)
    return 0


def cmd_list(args) -> int:
    with _client() as c:
        rows = c.list_schedulers()
    lines = []
    for r in rows:
        mark = "verified" if r["verified"] else ("available" if r["available"] else "missing")
        lines.append(f"{r['name']:14} {r['kind']:3} {mark:9} {r['summary']}")
    _print(args, rows, "\n".join(lines))
    return 0


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
    return 0 if report["ok"] else 1


def cmd_deploy(args) -> int:
    canary = {"window_s": float(args.canary)}
    if args.target_pid:
        canary["target_pids"] = args.target_pid
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
    return 0 if outcome.get("state") in ("kept", "passed") else 1


def cmd_keep(args) -> int:
    with _client() as c:
        state = c.keep(args.id)
    _print(args, {"id": args.id, "state": state}, f"{args.id}: {state}")
    return 0


def cmd_revert(args) -> int:
    with _client() as c:
        state = c.revert(args.id or "", args.reason)
    _print(args, {"id": args.id or "", "state": state}, f"{args.id or 'current'}: {state}")
    return 0


def cmd_history(args) -> int:
    with _client() as c:
        rows = c.history(args.limit)
    lines = [f"{d['id']} {d['spec']['kind']:3} {d['spec']['name']:14} {d['state']:9} "
             f"{d['reason']}" for d in rows]
    _print(args, rows, "\n".join(lines) or "no deployments yet")
    return 0


def run(func, args) -> int:
    from .client import HelperError

    try:
        return func(args)
    except HelperError as e:
        print(f"schedcp {args.command}: {e}", file=sys.stderr)
        return EXIT.get(type(e).__name__, 1)
    except OSError as e:
        print(f"schedcp {args.command}: {e}", file=sys.stderr)
        return 1


def register(sub: argparse._SubParsersAction) -> None:
    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=lambda a: run(func, a))
        return p

    add("status", cmd_status, "sched_ext support, what runs, the canary, the last-known-good")
    add("list", cmd_list, "schedulers the helper can run")
    v = add("verify", cmd_verify, "verify a policy or a .bpf.c in the sandbox; prints a token")
    g = v.add_mutually_exclusive_group(required=True)
    g.add_argument("--policy", help="one of the shipped policies")
    g.add_argument("--source", help="a .bpf.c file ('-' for stdin)")
    v.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    d = add("deploy", cmd_deploy, "deploy a verified token (or --scx NAME) with a canary; "
            "stays attached: the deployment reverts if this exits before it is kept")
    d.add_argument("token", help="token from `schedcp verify` (or the scx policy with --scx)")
    d.add_argument("--scx", action="store_true", help="TOKEN names a packaged scx_* policy")
    d.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="tunable for --scx")
    d.add_argument("--canary", type=float, default=10.0, help="canary window, s (default 10)")
    d.add_argument("--target-pid", type=int, action="append", help="watch this pid")
    d.add_argument("--keep", action="store_true", help="keep it when the canary passes")
    k = add("keep", cmd_keep, "keep a deployment that is on canary or passed")
    k.add_argument("id")
    r = add("revert", cmd_revert, "revert to the last-known-good (or the kernel default)")
    r.add_argument("id", nargs="?", help="deployment id (default: whatever runs)")
    r.add_argument("--reason", default="requested from the command line")
    h = add("history", cmd_history, "past deployments")
    h.add_argument("--limit", type=int, default=50)
