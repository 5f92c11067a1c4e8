"""The one wording of a measured effect, shared by the CLI, the tray, notifications and the
demo: "makespan -18 % (-12...-23 %, 5+5 runs)", or "no measurable effect" when the interval
does not show one ("5+4 runs": candidate runs + baseline runs). Input is a trial set's
evidence dict (JSON from a step or a lesson), so callers that only see records can use it."""

from __future__ import annotations

from typing import Any

from .stats import Estimate

LABELS = {"makespan_s": "makespan", "runqueue_wait_ms_per_s": "runqueue wait",
          "wake_p99_ms": "wake-up p99", "deadline_miss_ratio": "deadline-miss ratio"}
MINUS = "\u2212"


def _pct(x: float) -> str:
    """Signed whole percent with a real minus sign: -18, +4, 0."""
    v = round(x * 100)
    if v == 0:
        return "0"
    return f"{MINUS}{-v}" if v < 0 else f"+{v}"


def _range(low: float, high: float) -> str:
    """Interval of a change, the end nearer zero first (-12…-23, +3…+9, -3…+4)."""
    a, b = low - 1.0, high - 1.0
    if a < 0 and b < 0:
        a, b = b, a
    return f"{_pct(a)}\u2026{_pct(b)} %"


def interval_text(est: Estimate) -> str:
    return f"{_pct(est.change)} % ({_range(est.low, est.high)}, {est.n_b}+{est.n_a} runs)"


def describe_effect(evidence: dict[str, Any] | None) -> str:
    """One phrase for a trial set (``TrialSet.evidence()``) or a lesson's stored evidence."""
    if not evidence:
        return "not measured"
    label = LABELS.get(evidence.get("metric", ""), evidence.get("metric", "metric"))
    decision = evidence.get("decision", "")
    n_a, n_b = evidence.get("n_a", 0), evidence.get("n_b", 0)
    runs = f"{n_b}+{n_a} runs"
    if decision == "failed":
        return f"failed ({evidence.get('failed_runs', 1)} failed run(s) under the candidate)"
    if decision == "invalid":
        return "not measurable: the workload failed under the baseline"
    ratio, low, high = (evidence.get(k) for k in ("ratio", "ratio_low", "ratio_high"))
    if ratio is None or low is None or high is None:
        if evidence.get("legacy"):
            return "single run before interval measurement: effect unknown"
        return f"no measurable effect ({runs}, too few for an interval)"
    span = f"({_range(low, high)}, {runs})"
    if decision in ("improved", "regressed"):
        return f"{label} {_pct(ratio - 1)} % {span}"
    return f"no measurable effect on {label} {span}"


def held_text(stored: dict[str, Any] | None, now: dict[str, Any] | None,
              held: bool | None = None) -> str:
    """Did a stored effect hold in a new trial set? Both are evidence dicts; ``held`` is the
    caller's verdict (default: the new set is a significant improvement)."""
    was = describe_effect(stored)
    if now is None:
        return f"stored {was}; not re-measured"
    if held is None:
        held = now.get("decision") == "improved"
    verdict = "held" if held else "did not hold"
    return f"the stored effect {verdict}: then {was}, now {describe_effect(now)}"
