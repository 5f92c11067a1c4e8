"""A CLI with manners (issue #18, item 7 and the CLI parts of 9): bad input is a usage error
(exit 2, no traceback, nothing run), one exit-code table for every command and in the README,
"did you mean", user commands first in `schedcp --help`, a description, defaults and examples
in every subcommand's help, and a search that says "no good match" instead of five noise hits.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from schedcp.cli.main import GROUPS, build_parser, main
from schedcp.desktop.profiles import Profile
from schedcp.desktop.settings import Settings
from schedcp.exitcodes import TABLE, Exit, markdown_table
from schedcp.vocabulary import DEFAULT_GOAL, GOALS

REPO = Path(__file__).resolve().parents[3]


def schedcp(*argv: str, bus: str, tmp: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus, "XDG_DATA_HOME": str(tmp),
           "SCHEDCP_EMBEDDER": "hash"}
    return subprocess.run([sys.executable, "-m", "schedcp", *argv], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=tmp)


def usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == Exit.USAGE, argv
    err = capsys.readouterr().err
    assert "Traceback" not in err and "usage:" in err, err
    return err


@pytest.mark.parametrize("argv, words", [
    (["history", "--limit", "-3"], "must be at least 1, not -3"),
    (["history", "--limit", "banana"], "not a number: 'banana'"),
    (["optimize", "--pid", "999999"], "no running process has pid 999999"),
    (["optimize", "--pid", "0"], "must be at least 1"),
    (["optimize", "--seconds", "-1", "--", "true"], "must be a positive number"),
    (["optimize", "--target", "2", "--", "true"], "between 0 and 1"),
    (["optimize", "--max-iterations", "0", "--", "true"], "at least 1"),
    (["optimize", "--budget", "nan", "--", "true"], "positive number"),
    (["deploy", "tok", "--canary", "0"], "positive number"),
    (["deploy", "tok", "--target-pid", "999999"], "no running process"),
    (["vm", "--cpus", "0", "--", "true"], "at least 1"),
    (["vm", "--timeout", "-5", "--", "true"], "positive number"),
    (["policies", "search", "-k", "0", "game"], "at least 1"),
    (["demo", "--runs", "0"], "at least 1"),
    (["demo", "--unit-scale", "0"], "positive number"),
])
def test_bad_numbers_are_usage_errors(argv, words, capsys):
    assert words in usage_error(argv, capsys)


def test_the_reported_transcript_exits_2_without_a_traceback_and_without_the_helper(tmp_path):
    """cli-bad.txt: `history --limit -3` was a 40-line traceback; `optimize --pid 999999` a
    ProcessLookupError (exit 1); `optimize -- /no/such/program` was measured as a 5 ms batch
    and planned for. Each is refused by the parser before the helper is asked (the bus address
    leads nowhere: reaching it would be exit 3)."""
    nobus = f"unix:path={tmp_path}/no-bus"
    for argv, words in [(("history", "--limit", "-3"), "--limit: must be at least 1"),
                        (("optimize", "--pid", "999999"), "no running process has pid 999999"),
                        (("optimize", "--", "/no/such/program"),
                         "no such program: /no/such/program; nothing was run"),
                        (("optimize", "--", "no-such-program-18"),
                         "no program 'no-such-program-18' on PATH"),
                        (("optimize", "--", str(tmp_path)), "not an executable program")]:
        r = schedcp(*argv, bus=nobus, tmp=tmp_path)
        assert r.returncode == Exit.USAGE, (argv, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stdout == ""


@pytest.mark.parametrize("argv, best", [
    (["optimise", "--", "true"], "optimize"),
    (["histroy"], "history"),
    (["stauts"], "status"),
    (["optimize", "--goal", "troughput", "--", "true"], "throughput"),
    (["policies", "serach", "game"], "search"),
    (["optimize", "--brain", "claud", "--", "true"], "claude"),
])
def test_did_you_mean(argv, best, capsys):
    assert f"did you mean {best!r}?" in usage_error(argv, capsys)


def test_no_suggestion_for_a_word_close_to_nothing(capsys):
    err = usage_error(["frobnicate"], capsys)
    assert "invalid choice: 'frobnicate'" in err and "did you mean" not in err


def test_policies_show_suggests_the_closest_entry(tmp_path, capsys):
    assert main(["policies", "--embedder", "hash", "--db", str(tmp_path / "p.db"), "show",
                 "ljff"]) == Exit.USAGE
    assert "did you mean 'ljf'?" in capsys.readouterr().err


def test_one_set_of_goals_and_one_default_everywhere():
    parser = build_parser()
    opt = parser.parse_args(["optimize", "--", "true"])
    assert opt.goal == DEFAULT_GOAL == Settings().default_goal
    assert Profile(app_id="x", name="x", policy="vtime").goal == DEFAULT_GOAL
    # `latency` means responsiveness in both commands that take a goal (search rejected it)
    assert parser.parse_args(["optimize", "--goal", "latency", "--", "true"]).goal == \
        "responsiveness"
    assert parser.parse_args(["policies", "search", "--goal", "latency", "x"]).goal == \
        "responsiveness"
    from schedcp.agent import tools

    assert tuple(tools.GOALS) == GOALS  # the JSON-schema enum the models see


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_help_lists_user_commands_first_with_examples_and_exit_codes():
    text = build_parser().format_help()
    pos = {name: text.index(f"\n  {name} ") for _, names in GROUPS for name in names}
    for name in ("status", "optimize", "history", "revert", "demo"):
        for dev in ("vm", "vm-kit", "mcp", "verify", "deploy"):
            assert pos[name] < pos[dev], (name, dev)
    assert text.index("everyday commands:") < text.index("developer commands:")
    assert "examples:" in text and "exit status:" in text
    for code in TABLE:
        assert re.search(rf"^\s+{int(code)}\s+\S", text, re.M), code


def _walk(parser: argparse.ArgumentParser, prefix: str = ""):
    for name, p in _subparsers(parser).items():
        nested = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            yield from _walk(p, f"{prefix}{name} ")
        yield f"{prefix}{name}", p


def test_every_subcommand_has_a_description_defaults_and_examples():
    for name, p in _walk(build_parser()):
        text = p.format_help()
        assert p.description and len(p.description) > 20, name
        assert "\nexamples:\n  schedcp " in text, f"{name}: no examples"
        for a in p._actions:
            if not a.option_strings or a.help == argparse.SUPPRESS:
                continue
            if a.default not in (None, False, [], "", argparse.SUPPRESS):
                flat = "".join(text.split())  # help wraps anywhere, even inside a value
                assert re.search(r"default", a.help or "") or \
                    f"(default:{a.default})".replace(" ", "") in flat, \
                    f"{name} {a.option_strings[0]}"


def test_the_readme_documents_the_one_exit_code_table():
    readme = (REPO / "README.md").read_text()
    m = re.search(r"<!-- exit-status-table[^>]*-->\n(.*?)\n<!-- /exit-status-table -->",
                  readme, re.S)
    assert m and m.group(1) == markdown_table()


def test_no_command_returns_a_bare_number():
    """Every `return N` in the CLI modules goes through the table (Exit.X), so one situation
    cannot get two codes again."""
    modules = sorted((REPO / "app" / "schedcp" / "cli").glob("*.py"))
    assert len(modules) >= 6, modules
    for mod in modules:
        assert not re.findall(r"^\s+return [0-9]+\b", mod.read_text(), re.M), mod.name


@pytest.mark.parametrize("embedder", ["hash", "auto"])
def test_search_says_no_good_match_for_gibberish(embedder, tmp_path, capsys):
    base = ["policies", "--embedder", embedder, "--db", str(tmp_path / f"{embedder}.db"),
            "search"]
    assert main([*base, "zzzzqqq"]) == Exit.FAILED
    out = capsys.readouterr().out
    assert out.startswith("no good match for 'zzzzqqq'") and out.count("\n") == 1, out
    assert main([*base, "game", "frame", "latency"]) == Exit.OK
    out = capsys.readouterr().out.splitlines()
    assert out and all(float(line.split()[0]) >= 0.10 for line in out), out
    assert any("scx_lavd" in line or "interactive" in line for line in out), out


def test_no_sched_ext_is_one_exit_code_and_one_explanation_everywhere(stack, tmp_path):
    """deploy and optimize (and optimize --policy) exit 5 for the same situation, name the
    running release once, and point at `schedcp demo`; nothing is run first."""
    marker = tmp_path / "ran"
    for argv in (("deploy", "--scx", "scx_simple"),
                 ("optimize", "--", "touch", str(marker)),
                 ("optimize", "--goal", "latency", "--policy", "vtime", "--", "touch",
                  str(marker))):
        r = schedcp(*argv, bus=stack.address, tmp=tmp_path)
        assert r.returncode == Exit.NO_SCHED_EXT, (argv, r.stderr)
        assert r.stderr.count(os.uname().release) == 1, r.stderr
        assert r.stderr.count("CONFIG_SCHED_CLASS_EXT") == 1, r.stderr  # the hint once
        assert "schedcp demo" in r.stderr and "Traceback" not in r.stderr
        assert not marker.exists()


def test_optimize_says_what_the_long_step_is_and_how_long():
    """Issue #18 item 1: 22 s of silence while a candidate was verified in the sandbox VM.
    The planning step now prints what is checked and about how long it takes."""
    from schedcp.cli.agent import _line

    step = {"role": "planning", "iteration": 2,
            "plan": {"policy": "ljf", "tunables": {"slice_us": 25000}, "source": None}}
    assert _line(step, "throughput") == \
        "[2] checking ljf in a sandbox VM, about 20 s; then A/B runs against what runs now"
    gen = {**step, "plan": {**step["plan"], "policy": "custom_a1", "source": "/* bpf */"}}
    assert "checking custom_a1 (generated) in a sandbox VM" in _line(gen, "throughput")
    assert _line({"role": "planning", "iteration": 3, "plan": None}, "balanced") is None


def test_cli_history_speaks_the_vocabulary():
    from schedcp.cli.helper import _history_line

    line = _history_line({"id": "ab12", "spec": {"kind": "scx", "name": "scx_rusty"},
                          "state": "reverted",
                          "reason": "runqueue wait of pid 4242 rose past 3x its baseline"})
    assert line.split()[:4] == ["ab12", "scx", "scx_rusty", "undone"]
    assert line.endswith("the app had to wait for a CPU more than 3 times as long as before")
    assert "pid" not in line
