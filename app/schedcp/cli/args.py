"""Manners shared by every `schedcp` subcommand: a parser that suggests the closest valid word
("did you mean 'optimize'?") and exits 2 on bad usage, help that shows each option's default
and a few examples, and argument types that refuse bad values before anything runs."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import sys
import textwrap
from typing import NoReturn

from ..exitcodes import Exit
from ..vocabulary import GOALS, normalize_goal

_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


def suggestion(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to a mistyped ``word``, or None."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


class UsageError(Exception):
    """Bad usage found after parsing (a value argparse cannot check alone, or a missing
    prerequisite such as the guest kit): ``schedcp`` prints
    ``schedcp COMMAND: error: MESSAGE`` and exits 2 (``Exit.USAGE``), as argparse's own."""


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean": usage errors print the usage, the error and a suggestion,
    then exit 2 (``Exit.USAGE``)."""

    def error(self, message: str) -> NoReturn:
        m = _CHOICE.search(message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            best = suggestion(m.group(1), choices)
            if best:
                message += f"; did you mean {best!r}?"
        self.print_usage(sys.stderr)
        self.exit(int(Exit.USAGE), f"{self.prog}: error: {message}\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; "(default: X)" after every option whose default
    is a value (not None/False/empty) and whose help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if (action.option_strings and d not in (None, False, [], "", argparse.SUPPRESS)
                and "default" not in text and "%(default)" not in text):
            text += " (default: %(default)s)"
        return text


def command(sub: argparse._SubParsersAction, name: str, summary: str, description: str = "",
            examples: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary (in ``schedcp --help``), a description and
    examples (in ``schedcp NAME --help``)."""
    description = "\n\n".join(  # wrap plain paragraphs; keep pre-formatted ones as written
        textwrap.fill(par, 79) if "\n" not in par.strip() else par
        for par in (description or summary).split("\n\n"))
    epilog = ("examples:\n" + "\n".join(f"  {e}" for e in examples)) if examples else None
    return sub.add_parser(name, help=summary, description=description,
                          epilog=epilog, formatter_class=HelpFormatter)


# -- argument types: each raises ArgumentTypeError -> usage error, exit 2 ------------------------
def _number(kind, text: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_int(text: str) -> int:
    v = _number(int, text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {v}")
    return v


def nonnegative_int(text: str) -> int:
    v = _number(int, text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {v}")
    return v


def positive_float(text: str) -> float:
    v = _number(float, text)
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return v


def nonnegative_float(text: str) -> float:
    v = _number(float, text)
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return v


def fraction(text: str) -> float:
    v = _number(float, text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0.2 = 20 %), not {text}")
    return v


def goal(text: str) -> str:
    try:
        return normalize_goal(text)
    except ValueError as e:
        best = suggestion(text.lower(), list(GOALS))
        raise argparse.ArgumentTypeError(
            str(e) + (f"; did you mean {best!r}?" if best else "")) from None


def running_pid(text: str) -> int:
    """A pid of a process that exists now (checked via /proc, any owner)."""
    pid = positive_int(text)
    if not os.path.exists(f"/proc/{pid}"):
        raise argparse.ArgumentTypeError(f"no running process has pid {pid}")
    return pid


def program_problem(cmd: list[str]) -> str | None:
    """Why ``cmd`` cannot be started (no such program, not executable), or None. A one-word
    command is a shell line only for `schedcp vm`; here the first word is the program."""
    prog = cmd[0]
    if "/" in prog:
        if not os.path.exists(prog):
            return f"no such program: {prog}"
        if os.path.isdir(prog) or not os.access(prog, os.X_OK):
            return f"not an executable program: {prog}"
        return None
    if shutil.which(prog) is None:
        return f"no program {prog!r} on PATH"
    return None


def assignment(text: str, option: str) -> tuple[str, int | bool | str]:
    """``K=V`` from the command line (``--set``, ``--tunable``): integers (any base) and
    true/false (any case) as such, the rest as text; the helper checks names and bounds.
    ValueError names the option."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{option} {text!r}: expected K=V")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    try:
        return key, int(value, 0)
    except ValueError:
        return key, value
