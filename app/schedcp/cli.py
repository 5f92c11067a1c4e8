"""`schedcp` command line. Each subcommand lives in its own module; this file only dispatches."""

from __future__ import annotations

import argparse
import sys

from . import __version__, agentcmd, demo, helpercmd, policiescmd, vmcmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schedcp",
        description="Application-aware CPU scheduling with sched_ext.",
    )
    parser.add_argument("--version", action="version", version=f"schedcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    vmcmd.register(sub)
    helpercmd.register(sub)
    agentcmd.register(sub)
    policiescmd.register(sub)
    demo.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return 141
    except vmcmd.UsageError as e:
        print(f"schedcp {args.command}: error: {e}", file=sys.stderr)
        return 2
