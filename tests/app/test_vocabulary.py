"""One vocabulary (issue #18, items 4 and 5): every user-visible sentence about a result comes
from schedcp.vocabulary. One measured result used to read four ways ("makespan -25 %", "run
time -25%", "+24.7 %", a different metric in History than in the notification); undo was
"Revert to default", "revert to the previous scheduler" and "last-known-good"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from schedcp import vocabulary as v
from schedcp.missing import KernelFacts, kernel_facts, no_helper, no_sched_ext, no_sched_ext_short

APP = Path(__file__).resolve().parents[2] / "app" / "schedcp"
# the modules whose strings reach a person: tray, notifications, History, CLI, MCP, the loop's
# stop messages
USER_FACING = sorted({*APP.glob("tray/*.py"), *APP.glob("cli/*.py"), APP / "desktop/session.py",
                      APP / "mcpserver.py",
                      APP / "agent/fixed.py", APP / "agent/loop.py", APP / "measure/effect.py",
                      APP / "missing.py"})
# words of the old wordings, and the ways a module spelled a change its own way
BANNED = [
    (re.compile(r"\bmakespan\b(?!_)", re.I), "a metric's internal name"),
    (re.compile(r"run-?queue wait", re.I), "a metric's internal name"),
    (re.compile(r"wake-up p99|p99 wake-up", re.I), "a metric's internal name"),
    (re.compile(r"deadline-miss", re.I), "a metric's internal name"),
    (re.compile(r"last-known-good", re.I), "the undo target's internal name"),
    (re.compile(r"\bRevert(ed)? to\b|\bRevert\b(?! failed)"), "the undo verb is vocabulary.UNDO"),
    (re.compile(r"^\s*run time\b"), "History's own metric name"),
]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _user_strings(path: Path):
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = "".join(c.value for c in ast.walk(node.format_spec)
                           if isinstance(c, ast.Constant) and isinstance(c.value, str))
            if spec.endswith("%"):  # f"{x:+.0%}": a percentage spelled outside the vocabulary
                yield node.lineno, f"{{…:{spec}}}"


def test_no_user_facing_module_words_a_result_its_own_way():
    found = []
    for path in USER_FACING:
        for line, text in _user_strings(path):
            if text.startswith("{…:"):
                found.append(f"{path.relative_to(APP)}:{line}: percent format {text}")
                continue
            for pattern, why in BANNED:
                if pattern.search(text):
                    found.append(f"{path.relative_to(APP)}:{line}: {text!r} ({why})")
    assert not found, "\n".join(found)


def test_the_guard_sees_what_it_guards(tmp_path):
    """The scan would catch the old wordings (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text('def f(g):\n    """makespan in a docstring is fine"""\n'
                   '    return f"run time {g:+.0%}", "Revert to default", "makespan -25 %"\n')
    texts = [t for _, t in _user_strings(bad)]
    assert "{…:+.0%}" in texts and "Revert to default" in texts
    assert not any("docstring" in t for t in texts)
    hits = [t for t in texts for p, _ in BANNED if p.search(t)]
    assert "Revert to default" in hits and "makespan -25 %" in hits


EV = {"metric": "makespan_s", "decision": "improved", "n_a": 6, "n_b": 6, "median_a": 11.7,
      "median_b": 8.8, "ratio": 8.8 / 11.7, "ratio_low": 0.69, "ratio_high": 0.81}


def test_the_one_effect_sentence_everywhere():
    """Tray step line, notification/History text (vocabulary.outcome_sentence), the CLI's optimize
    line and the MCP tool's "effect" field are the same sentence for the same trials."""
    from types import SimpleNamespace

    from schedcp.agent.fixed import summary  # the MCP measure tool's answer
    from schedcp.cli.agent import _line
    from schedcp.measure.effect import describe_effect
    from schedcp.tray.wording import step_line
    from schedcp.vocabulary import outcome_sentence as effect_text

    want = "batch run time 11.7 s \u2192 8.8 s, 25 % faster (19\u202631 %, 6+6 runs)"
    assert v.effect_sentence(EV) == describe_effect(EV) == want
    step = {"role": "execution", "iteration": 1, "seconds": 1.0, "effect": describe_effect(EV),
            "improvement": 1 - EV["ratio"],
            "outcome": {"plan": {"policy": "ljf", "tunables": {}}, "verified": True,
                        "before": {"makespan_s": 11.7}, "after": {"makespan_s": 8.8},
                        "trials": EV}}
    for goal in v.GOALS[1:]:  # throughput, battery, balanced: one headline metric
        assert effect_text(step["outcome"], goal) == want
        assert step_line(step, goal) == ("good", f"ljf: {want}")
        assert want in _line(step, goal)
    run = SimpleNamespace(steps=[step], message="", stop_reason="max_iterations", best=None,
                          seconds=1.0)
    assert summary(run)["effect"] == want


def test_sentences_for_each_metric_and_direction():
    assert v.before_after_sentence({"wake_p99_ms": 3.0}, {"wake_p99_ms": 2.0},
                                   "responsiveness") == \
        "input latency (p99) 3 ms \u2192 2 ms, 33 % lower (1 run each)"
    assert v.before_after_sentence({"runqueue_wait_ms_per_s": 40}, {"runqueue_wait_ms_per_s": 50}
                                   ) == \
        "time waiting for a CPU 40 ms/s \u2192 50 ms/s, 25 % more (1 run each)"
    assert v.gain_text(0.25) == "25 % better" and v.gain_text(-0.1) == "10 % worse"
    assert v.effect_sentence({**EV, "decision": "inconclusive", "ratio": 0.99,
                              "ratio_low": 0.95, "ratio_high": 1.04}).startswith(
        "no measurable effect on batch run time: 11.7 s \u2192 8.8 s (\u22125\u2026+4 %, 6+6 runs)")


@pytest.mark.parametrize("raw, plain", [
    ("runqueue wait of pid 4242 rose past 3x its baseline",
     "the app had to wait for a CPU more than 3 times as long as before"),
    ("after the canary, runqueue wait of pid 7 rose past 2.5x its baseline",
     "after its trial, the app had to wait for a CPU more than 2.5 times as long as before"),
    ("runnable task stall: the kernel ejected it",
     "the kernel stopped it because it left tasks waiting too long"),
    ("reported metric regressed: 12 vs baseline 10", "the app got slower than before"),
])
def test_revert_reasons_in_plain_words(raw, plain):
    text, details = v.plain_reason(raw)
    assert text == plain and details == raw
    assert "pid" not in text and "baseline" not in text


def test_goals_one_set_one_default_one_alias():
    assert v.normalize_goal("Latency") == "responsiveness"
    assert v.normalize_goal("balanced") == v.DEFAULT_GOAL
    with pytest.raises(ValueError, match="choose from responsiveness"):
        v.normalize_goal("speed")
    assert set(v.GOAL_LABELS) == set(v.GOAL_HINTS) == set(v.GOALS)


# -- "what is missing" (item 2) --------------------------------------------------------------
def _config(tmp_path: Path, line: str) -> tuple[Path, ...]:
    p = tmp_path / "config"
    p.write_text(f"CONFIG_BPF=y\n{line}\nCONFIG_DEBUG_INFO_BTF=y\n")
    return (p,)


def test_missing_new_enough_but_built_without(tmp_path):
    f = kernel_facts("6.18.44-fc", _config(tmp_path, "# CONFIG_SCHED_CLASS_EXT is not set"))
    assert f == KernelFacts("6.18.44-fc", (6, 18), False, str(tmp_path / "config"))
    text = no_sched_ext(f)
    assert text.startswith("No sched_ext in this kernel (Linux 6.18.44-fc), so")
    assert "new enough" in text
    assert "built without CONFIG_SCHED_CLASS_EXT" in text
    assert "6.12 or newer" not in text  # the old text told a 6.18 user to get 6.12
    assert "/sys/kernel/sched_ext" in text and "Ubuntu 25.04" in text  # how to check, where
    assert "schedcp demo" in text
    assert "new enough, but built without CONFIG_SCHED_CLASS_EXT" in no_sched_ext_short(f)


def test_missing_too_old_and_unknown(tmp_path):
    old = no_sched_ext(kernel_facts("6.1.0-28-amd64", ()))
    assert "(Linux 6.1.0-28-amd64)" in old and "older than 6.12" in old
    unknown = no_sched_ext(kernel_facts("6.14.0", ()))  # no config published
    assert "Most likely it was built without CONFIG_SCHED_CLASS_EXT" in unknown
    gz = tmp_path / "config.gz"
    import gzip

    gz.write_bytes(gzip.compress(b"CONFIG_SCHED_CLASS_EXT=y\n"))
    assert kernel_facts("6.12.1", (gz,)).config is True


def test_missing_helper_gives_an_install_command():
    assert "sudo apt install schedcp-helper" in no_helper()
