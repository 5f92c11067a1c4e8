"""`schedcp` command line. Each subcommand lives in its own module; this file only dispatches.
Exit statuses: schedcp.exitcodes (one table for every command)."""

from __future__ import annotations

import argparse
import sys

from .. import __version__, demo
from ..exitcodes import TABLE, Exit
from . import agent, helper, policies, vm
from .args import HelpFormatter, Parser, UsageError

# `schedcp --help` lists commands in this order, under these headings
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("everyday commands", ("status", "optimize", "history", "revert", "keep", "demo")),
    ("schedulers", ("policies", "list", "verify", "deploy")),
    ("developer commands", ("vm", "vm-kit", "mcp")),
)
EXAMPLES = (
    "schedcp status                      what runs now, and whether switching is possible",
    "schedcp optimize -- make -j4        find the best scheduler for a build",
    "schedcp optimize --goal responsiveness --pid 4242",
    "schedcp history                     what was tried and kept",
    "schedcp revert                      undo: back to the scheduler that ran before",
    "schedcp demo                        see it work in a sched_ext micro-VM",
)


def _exit_text() -> str:
    return "exit status:\n" + "\n".join(
        f"  {int(c):3}  {t}" for c, t in TABLE.items())


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="schedcp", formatter_class=HelpFormatter,
                    description="Application-aware CPU scheduling with sched_ext.")
    parser.add_argument("--version", action="version", version=f"schedcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of the commands below")
    helper.register(sub)
    agent.register(sub)
    policies.register(sub)
    demo.register(sub)
    vm.register(sub)
    # argparse lists subcommands in registration order under one heading; list them ourselves,
    # grouped, user commands first (the parsers stay registered, so parsing is unchanged)
    summaries = {a.dest: a.help for a in sub._choices_actions}
    assert set(summaries) == {n for _, names in GROUPS for n in names}, summaries
    sub._choices_actions.clear()
    width = max(map(len, summaries)) + 2
    lines = []
    for heading, names in GROUPS:
        lines.append(f"{heading}:")
        lines += [f"  {n:<{width}}{summaries[n]}" for n in names]
        lines.append("")
    parser.epilog = ("\n".join(lines) + "\nexamples:\n" + "\n".join(f"  {e}" for e in EXAMPLES)
                     + "\n\n" + _exit_text()
                     + "\n\n`schedcp COMMAND --help` shows a command's options and examples.")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        return int(Exit.BROKEN_PIPE)
    except KeyboardInterrupt:
        print(f"schedcp {args.command}: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except UsageError as e:
        print(f"schedcp {args.command}: error: {e}", file=sys.stderr)
        return int(Exit.USAGE)

