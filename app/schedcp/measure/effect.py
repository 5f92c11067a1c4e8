"""The one wording of a measured effect, shared by the CLI, the tray, notifications, History,
MCP and the demo: "batch run time 11.7 s -> 8.8 s, 25 % faster (19...31 %, 6+6 runs)", or "no
measurable effect" when the interval does not show one ("5+4 runs": candidate runs + baseline
runs). The sentence itself lives in schedcp.vocabulary; this module keeps the measurement-side
helpers. Input is a trial set's evidence dict (JSON from a step or a lesson)."""

from __future__ import annotations

from typing import Any

from ..vocabulary import METRICS, MINUS, effect_sentence
from .stats import Estimate

LABELS = {k: m.label for k, m in METRICS.items()}


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
    """One sentence for a trial set (``TrialSet.evidence()``) or a lesson's stored evidence."""
    return effect_sentence(evidence)


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
