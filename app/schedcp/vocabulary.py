"""The one vocabulary of SchedCP's user-facing text: goals (one set, one default), metric names,
the undo verb and the one sentence for a measured effect. The tray, notifications, History, the
CLI and the MCP server all take their words from here (``tests/app/test_vocabulary.py`` checks
that no other module spells a result its own way).

The effect sentence reads the way a person checks it: the number before, the number after, the
change in plain words, and how sure we are::

    batch run time 11.7 s → 8.8 s, 25 % faster (19…31 %, 6+6 runs)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# -- states -------------------------------------------------------------------------------------
# what the desktop session is in (desktop.session), each with its title in tray.wording
STATES = ("default", "optimized", "canary", "attention", "unavailable")

# -- goals ---------------------------------------------------------------------------------------
GOALS = ("responsiveness", "throughput", "battery", "balanced")
DEFAULT_GOAL = "balanced"
GOAL_ALIASES = {"latency": "responsiveness"}  # the one alias: `--goal latency` predates the set
GOAL_LABELS = {
    "responsiveness": "Responsiveness",
    "throughput": "Throughput",
    "battery": "Battery life",
    "balanced": "Balanced",
}
GOAL_HINTS = {
    "responsiveness": "lowest input and frame latency",
    "throughput": "finish batch work sooner",
    "battery": "fewer wake-ups, lower power",
    "balanced": "a good compromise",
}


def normalize_goal(text: str) -> str:
    """A goal name as typed (any case, or an alias such as ``latency``) → one of GOALS.
    ValueError names the goals when it is none of them."""
    t = text.strip().lower()
    goal = GOAL_ALIASES.get(t, t)
    if goal not in GOALS:
        raise ValueError(f"unknown goal {text!r}: choose from {', '.join(GOALS)} "
                         f"(or latency for responsiveness)")
    return goal


# what a workload is, in words (the analysis' kinds)
KIND_WORDS = {"game": "a game", "interactive": "an interactive app", "batch": "batch work",
              "build": "a software build", "media": "media playback", "idle": "an idle app"}


# -- undo ----------------------------------------------------------------------------------------
UNDO = "Undo"  # the verb on every button, menu item and notification action
UNDO_LONG = "Undo: back to the previous scheduler"
PREVIOUS = "the previous scheduler"  # what "last-known-good" means to a user
DEFAULT_SCHEDULER = "the kernel's own scheduler"


# the one switch over every profile, named the same in the menu, Settings and Profiles
AUTO_PROFILES = "Apply profiles automatically"
AUTO_PROFILES_HINT = "when an app with a profile starts; when off, every profile asks first"


# -- long steps say what they do and how long --------------------------------------------------
CHECK_SECONDS = 20  # a verification's sandbox VM run on a 2-core machine (README: ~20 s)


def checking_text(policy: str) -> str:
    """What the wait before a scheduler runs is: ``checking vtime in a sandbox VM, about 20 s``."""
    return f"checking {policy} in a sandbox VM, about {CHECK_SECONDS} s"


# -- metrics -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    label: str  # plain name
    unit: str
    better: str  # the adjective when it went down (all our metrics: lower is better)
    worse: str
    scale: float = 1.0  # value * scale is shown in ``unit``


METRICS: dict[str, Metric] = {
    "makespan_s": Metric("batch run time", "s", "faster", "slower"),
    "wake_p99_ms": Metric("input latency (p99)", "ms", "lower", "higher"),
    "runqueue_wait_ms_per_s": Metric("time waiting for a CPU", "ms/s", "less", "more"),
    "deadline_miss_ratio": Metric("missed frames", "%", "fewer", "more", 100.0),
}
# the headline metric of a goal, first one present wins
HEADLINE = {
    "responsiveness": ("wake_p99_ms", "deadline_miss_ratio", "runqueue_wait_ms_per_s",
                       "makespan_s"),
    "throughput": ("makespan_s", "runqueue_wait_ms_per_s", "wake_p99_ms"),
    "battery": ("makespan_s", "runqueue_wait_ms_per_s", "wake_p99_ms"),
    "balanced": ("makespan_s", "runqueue_wait_ms_per_s", "wake_p99_ms"),
}
MINUS = "\u2212"
ARROW = "\u2192"


def metric_label(key: str) -> str:
    m = METRICS.get(key)
    return m.label if m else key


def value_text(key: str, value: float | None) -> str:
    """``11.7 s``, ``2.05 ms``, ``12 %``."""
    if value is None:
        return "?"
    m = METRICS.get(key)
    if m is None:
        return f"{value:.3g}"
    v = value * m.scale
    return f"{v:.3g} {m.unit}" if m.unit != "%" else f"{v:.3g} %"


def metric_text(metrics: dict | None, goal: str = DEFAULT_GOAL) -> str:
    """The goal's headline number of a Metrics dict: ``batch run time 11.7 s``."""
    for key in HEADLINE.get(goal, HEADLINE[DEFAULT_GOAL]):
        if metrics and metrics.get(key) is not None:
            return f"{metric_label(key)} {value_text(key, metrics[key])}"
    return "not measured"


def _pct(x: float) -> str:
    return f"{abs(round(x * 100))}"


def change_text(key: str, ratio: float) -> str:
    """``25 % faster`` / ``10 % slower`` / ``no change`` for after/before = ratio."""
    m = METRICS.get(key, Metric(key, "", "lower", "higher"))
    if round((ratio - 1) * 100) == 0:
        return "no change"
    return f"{_pct(1 - ratio)} % {m.better if ratio < 1 else m.worse}"


def _span(low: float, high: float) -> str:
    """The interval of the change in the sentence's own direction: a 19…31 % gain; a -3…+4 %
    interval that straddles zero keeps signs."""
    a, b = 1 - high, 1 - low  # as gains
    if (a >= 0 and b >= 0) or (a <= 0 and b <= 0):
        lo, hi = sorted((abs(round(a * 100)), abs(round(b * 100))))
        return f"{lo} %" if lo == hi else f"{lo}\u2026{hi} %"

    def signed(x: float) -> str:
        v = round(x * 100)
        return f"{MINUS}{-v}" if v < 0 else f"+{v}"
    return f"{signed(-b)}\u2026{signed(-a)} %"  # as changes of the number, e.g. -6…+3 %


def effect_sentence(evidence: dict[str, Any] | None) -> str:
    """THE sentence for a measured effect (a TrialSet's ``evidence()`` or a lesson's stored
    evidence): ``batch run time 11.7 s → 8.8 s, 25 % faster (19…31 %, 6+6 runs)``."""
    if not evidence:
        return "not measured"
    key = evidence.get("metric", "")
    label = metric_label(key)
    decision = evidence.get("decision", "")
    n_a, n_b = evidence.get("n_a", 0), evidence.get("n_b", 0)
    runs = f"{n_b}+{n_a} runs"
    if decision == "failed":
        return f"failed ({evidence.get('failed_runs', 1)} failed run(s) under the candidate)"
    if decision == "invalid":
        return "not measurable: the workload failed under the baseline"
    before, after = evidence.get("median_a"), evidence.get("median_b")
    numbers = (f"{value_text(key, before)} {ARROW} {value_text(key, after)}"
               if before is not None and after is not None else "")
    ratio, low, high = (evidence.get(k) for k in ("ratio", "ratio_low", "ratio_high"))
    if ratio is None or low is None or high is None:
        if evidence.get("legacy"):
            return "single run before interval measurement: effect unknown"
        return f"no measurable effect ({runs}, too few for an interval)"
    span = f"({_span(low, high)}, {runs})"
    if decision in ("improved", "regressed"):
        head = f"{label} {numbers}, " if numbers else f"{label} "
        return f"{head}{change_text(key, ratio)} {span}"
    return f"no measurable effect on {label}" + (f": {numbers}" if numbers else "") + f" {span}"


def before_after_sentence(before: dict | None, after: dict | None,
                          goal: str = DEFAULT_GOAL) -> str:
    """The same sentence from two single measurements (no interval: "1 run each")."""
    before, after = before or {}, after or {}
    for key in HEADLINE.get(goal, HEADLINE[DEFAULT_GOAL]):
        b, a = before.get(key), after.get(key)
        if b and a is not None:
            return (f"{metric_label(key)} {value_text(key, b)} {ARROW} {value_text(key, a)}, "
                    f"{change_text(key, a / b)} (1 run each)")
    return ""


def outcome_sentence(outcome: dict, goal: str = DEFAULT_GOAL) -> str:
    """The sentence for an agent step's outcome: the A/B trials' effect with its interval when
    there are trials, else its single before -> after measurements."""
    if outcome.get("trials"):
        return effect_sentence(outcome["trials"])
    return before_after_sentence(outcome.get("before"), outcome.get("after"), goal)


def gain_text(gain: float | None) -> str:
    """A bare improvement fraction (no numbers to show): ``25 % better`` / ``10 % worse``."""
    if gain is None:
        return ""
    if round(gain * 100) == 0:
        return "no change"
    return f"{abs(round(gain * 100))} % {'better' if gain > 0 else 'worse'}"


_WAIT_ROSE = re.compile(r"runqueue wait of pid (\d+) rose past ([\d.]+)x its baseline")
_REGRESSED = re.compile(r"reported metric regressed: ([\d.e+-]+) vs baseline ([\d.e+-]+)")


def plain_reason(reason: str) -> tuple[str, str]:
    """(plain sentence, details) for a reason the helper gives for undoing a deployment; the
    details keep the helper's own words (pids, ratios) for the Details expander."""
    r = (reason or "").strip()
    prefix = ""
    if r.startswith("after the canary, "):
        prefix, r = "after its trial, ", r.removeprefix("after the canary, ")
    if m := _WAIT_ROSE.search(r):
        text = (f"the app had to wait for a CPU more than {m.group(2)} times as long as "
                "before")
    elif _REGRESSED.search(r):
        text = "the app got slower than before"
    elif "eject" in r or "watchdog" in r:
        text = "the kernel stopped it because it left tasks waiting too long"
    elif "loader" in r and ("died" in r or "exit" in r):
        text = "the scheduler's program stopped unexpectedly"
    elif r:
        text = r
    else:
        text = "the helper undid it"
    return prefix + text, reason
