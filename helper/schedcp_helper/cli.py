"""``schedcp-helper``: the helper's stages by hand (root), without D-Bus.

verify  runs the Execution Verifier and prints its report (and the token with --json);
load    verifies (or picks a packaged scheduler), deploys with a canary and holds it until
        Ctrl-C, SIGTERM, ``unload`` or --hold seconds; then the previous state comes back;
unload  asks the process holding a scheduler to let go;
state   shows sched_ext's state and its recent enable/disable events with their reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from schedcp_common.policy import PolicyError

from .core import HelperCore, state_dir_from_env
from .deploy import CanaryParams, DeployError
from .pairs import parse_pairs
from .scxstate import kernel_events, read_state
from .verifier.target import TargetError
from .verifier.token import TokenError

HOLDER = "holder.pid"
RELEASED = "released by schedcp-helper load"


class UsageError(Exception):
    """A bad argument: one line on stderr and exit status 2, like argparse's own errors."""


def _pairs(items: list[str], what: str) -> dict[str, int | bool | str]:
    try:
        return parse_pairs(items, what)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _core(args: argparse.Namespace, listener=None):
    kw = {"listener": listener}
    if args.state_dir:
        kw["state_dir"] = Path(args.state_dir)
    return HelperCore(**kw)


def _verify(core, args: argparse.Namespace, progress=None):
    tunables = _pairs(args.set, "--set")
    if args.policy:
        return core.verify_policy(args.policy, tunables, os.getuid(), progress)
    source = Path(args.source).read_bytes() if args.source != "-" else sys.stdin.buffer.read()
    return core.verify_source(source, tunables, os.getuid(), Path(args.source).stem, progress)


def cmd_verify(args: argparse.Namespace) -> int:
    core = _core(args)

    def progress(stage: str, msg: str) -> None:
        if not args.json:
            print(f"[{stage}] {msg}", file=sys.stderr, flush=True)

    report = _verify(core, args, progress)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.render())
        for s in report.stages:
            if s.verdict == "fail" and s.details:
                print(f"\n{s.name} details:\n  " + "\n  ".join(s.details[-40:]))
    return 0 if report.ok else 1


def cmd_load(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise UsageError("loading a scheduler needs root")
    if not read_state().supported:  # say so before a verification that boots a micro-VM
        raise UsageError("this kernel has no sched_ext: nothing can be loaded here "
                         "(try it in `schedcp vm`)")
    if args.canary <= 0 or args.hold < 0:
        raise UsageError("--canary wants a positive number of seconds, --hold zero or more")
    done = threading.Event()

    def listener(kind: str, dep) -> None:
        print(json.dumps({"event": kind, "id": dep.id, "state": dep.state, "ops": dep.ops,
                          "reason": dep.reason}), flush=True)
        if kind in ("reverted", "failed"):
            done.set()

    core = _core(args, listener)
    canary = CanaryParams(window_s=args.canary, target_pids=args.target_pid or [])
    try:
        if args.scx:
            dep = core.switch(args.scx, _pairs(args.set, "--set"), os.getuid(), canary)
        else:
            report = _verify(core, args)
            if not report.ok:
                print(report.render(), file=sys.stderr)
                return 1
            hints = {int(k): int(v) for k, v in _pairs(args.hint, "--hint").items()}
            dep = core.deploy(report.token, os.getuid(), canary, hints=hints,
                              name=args.policy or Path(args.source).stem)
    except DeployError as e:
        print(f"schedcp-helper load: {e}", file=sys.stderr)
        return 1
    pidfile = core.state_dir / HOLDER
    pidfile.write_text(str(os.getpid()))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        done.wait(args.hold if args.hold > 0 else None)
    finally:
        pidfile.unlink(missing_ok=True)
        current = core.deployer.current
        if current is not None and current.id == dep.id:
            core.revert(RELEASED, dep.id)
        core.shutdown()
    tripped = dep.state == "failed" or (dep.state == "reverted" and dep.reason != RELEASED)
    return 1 if tripped else 0


def cmd_unload(args: argparse.Namespace) -> int:
    pidfile = Path(args.state_dir or state_dir_from_env()) / HOLDER
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        print("schedcp-helper unload: no scheduler is held by schedcp-helper load",
              file=sys.stderr)
        return 1
    print(f"asked {pid} to unload")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    st = read_state()
    events = kernel_events()[-args.events:] if st.supported else []
    if args.json:
        print(json.dumps({"state": asdict(st), "events": [asdict(e) for e in events]}))
        return 0
    if not st.supported:
        print("this kernel has no sched_ext (run the helper's checks in `schedcp vm`)")
        return 0
    print(f"sched_ext: {st.state}" + (f" ({st.ops})" if st.ops else ""))
    for e in events:
        print(f"  {e.kind:8} {e.explanation}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="schedcp-helper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state-dir", help="state folder (default /var/lib/schedcp)")
    sub = p.add_subparsers(dest="command", required=True)

    def what(sp: argparse.ArgumentParser, scx: bool) -> None:
        g = sp.add_mutually_exclusive_group(required=True)
        g.add_argument("--policy", help="one of our policies (bpf/ + policies/)")
        g.add_argument("--source", help="a .bpf.c file ('-' for stdin)")
        if scx:
            g.add_argument("--scx", help="a packaged scx_* scheduler by policy name")
        sp.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="tunable (repeatable)")

    v = sub.add_parser("verify", help="run the Execution Verifier")
    what(v, scx=False)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_verify)
    ld = sub.add_parser("load", help="verify, deploy with a canary, hold")
    what(ld, scx=True)
    ld.add_argument("--hint", action="append", default=[], metavar="TGID=NS",
                    help="expected-runtime hint for ljf (repeatable)")
    ld.add_argument("--canary", type=float, default=10.0, help="canary window, s (default 10)")
    ld.add_argument("--target-pid", type=int, action="append",
                    help="watch this pid's runqueue wait during the canary (repeatable)")
    ld.add_argument("--hold", type=float, default=0, help="seconds to hold (0: until signalled)")
    ld.set_defaults(func=cmd_load)
    u = sub.add_parser("unload", help="release what `load` holds")
    u.set_defaults(func=cmd_unload)
    s = sub.add_parser("state", help="sched_ext state and recent events")
    s.add_argument("--json", action="store_true")
    s.add_argument("--events", type=int, default=10)
    s.set_defaults(func=cmd_state)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, PolicyError, TargetError, TokenError, OSError) as e:
        print(f"schedcp-helper {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
