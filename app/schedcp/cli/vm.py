"""`schedcp vm` and `schedcp vm-kit`: run a command in the sched_ext micro-VM.

The micro-VM itself lives in the helper package (its verifier runs candidates there); booting it
needs no privilege, so the developer command and the demo use it directly.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from schedcp_common.vm import GuestError, KitError, Outcome, build_kit, find_kit, guest

from ..exitcodes import Exit
from .args import UsageError, command, positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = command(
        sub, "vm", "run a command as root in a sched_ext guest",
        "Boot a qemu guest with a sched_ext kernel, run CMD as root with the host "
        "filesystem visible read-only and the output folder (default: the current directory) "
        "writable at its own path, stream the output and exit with CMD's status (124 on "
        "timeout, 130 on interrupt, 255 if the guest died). One CMD word is a shell line; "
        "several are quoted as they are.",
        ("schedcp vm -- uname -r", "schedcp vm --cpus 4 -- 'ls /sys/kernel/sched_ext'"),
    )
    p.add_argument("--kernel", type=Path, help="bzImage to boot (default: the host kernel if it "
                   "has sched_ext, else the cached guest kit)")
    p.add_argument("--cpus", type=positive_int, default=2, help="vCPUs (at most 64)")
    p.add_argument("--memory", default="2G", help="guest memory, qemu syntax")
    p.add_argument("--timeout", type=positive_float, default=600.0, help="seconds before the "
                   "guest is killed, boot included")
    p.add_argument("--out", type=Path, default=None, help="host folder shared read-write "
                   "(default: the current directory)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for CMD (repeatable)")
    p.add_argument("--verbose", action="store_true", help="show the guest kernel's console")
    p.add_argument("--virtual-time", action="store_true",
                   help="instruction-counted virtual time (qemu -icount, single-threaded TCG): "
                   "timings are guest-virtual and repeatable, showing scheduling decisions, not "
                   "host speed; CPU-bound work runs several times slower")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")
    p.set_defaults(func=cmd_vm)

    k = command(
        sub, "vm-kit", "obtain the sched_ext guest kernel and BPF tools",
        "Print the verified guest kit folder, importing a prebuilt copy whose "
        "sha256 manifest matches (SCHEDCP_SHARED_VM or ../shared/vm) if the cache is empty.",
        ("schedcp vm-kit", "schedcp vm-kit --build"),
    )
    k.add_argument("--build", action="store_true", help="build it from Debian's "
                   "linux-source-6.12 if none can be had (~25 min, uses apt)")
    k.set_defaults(func=cmd_vm_kit)


def _parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def _config(args: argparse.Namespace) -> guest.GuestConfig:
    if args.cpus < 1 or args.cpus > 64:
        raise UsageError("--cpus must be between 1 and 64")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    common = dict(cpus=args.cpus, memory=args.memory, timeout=args.timeout,
                  env=_parse_env(args.env), verbose=args.verbose,
                  virtual_time=args.virtual_time,
                  out_dir=(args.out or Path.cwd()).resolve())
    try:
        if args.kernel:
            return guest.GuestConfig(kernel=args.kernel, **common)
        return guest.default_config(**common)
    except KitError as e:
        raise UsageError(str(e)) from None


def _terminate(signum, frame):  # SIGTERM/SIGHUP: tear down like Ctrl-C
    raise KeyboardInterrupt


def cmd_vm(args: argparse.Namespace) -> int:
    words = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not words:
        raise UsageError("no command given: schedcp vm [OPTIONS] -- CMD...")
    line = words[0] if len(words) == 1 else shlex.join(words)
    cfg = _config(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)

    def echo(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    try:
        result = guest.run(line, cfg, echo)
    except (GuestError, KitError) as e:
        raise UsageError(str(e)) from None
    if result.outcome is not Outcome.EXITED:
        print(f"schedcp vm: {result.message}", file=sys.stderr)
    return result.returncode


def cmd_vm_kit(args: argparse.Namespace) -> int:
    try:
        kit = find_kit()
    except KitError as e:
        if not args.build:
            raise UsageError(str(e)) from None
        kit = build_kit()
    print(kit.root)
    return Exit.OK
