"""The one wording of an effect."""

from __future__ import annotations

from schedcp.measure.effect import describe_effect, held_text

M = "\u2212"


def ev(decision: str, ratio: float, low: float, high: float, n: int = 5) -> dict:
    return {"metric": "makespan_s", "decision": decision, "n_a": n, "n_b": n, "ratio": ratio,
            "ratio_low": low, "ratio_high": high}


def test_a_significant_effect_reads_with_its_interval_and_runs():
    assert describe_effect(ev("improved", 0.82, 0.77, 0.88)) == \
        "batch run time 18 % faster (12\u202623 %, 5+5 runs)"
    assert describe_effect(ev("regressed", 1.3, 1.1, 1.5, 6)) == \
        "batch run time 30 % slower (10\u202650 %, 6+6 runs)"
    # with the medians, the sentence a person checks: before → after, then the change
    assert describe_effect({**ev("improved", 8.8 / 11.7, 0.69, 0.81, 6), "median_a": 11.7,
                            "median_b": 8.8}) == \
        "batch run time 11.7 s \u2192 8.8 s, 25 % faster (19\u202631 %, 6+6 runs)"
    # an interval across zero keeps its signs (of the number's change)
    assert describe_effect({**ev("inconclusive", 0.98, 0.94, 1.03), "metric": "wake_p99_ms"}) \
        == f"no measurable effect on input latency (p99) ({M}6\u2026+3 %, 5+5 runs)"


def test_no_effect_is_said_plainly():
    text = describe_effect(ev("inconclusive", 0.99, 0.95, 1.04, 9))
    assert text.startswith("no measurable effect") and "9+9 runs" in text
    assert describe_effect({"decision": "failed", "failed_runs": 1}).startswith("failed")
    assert "single run" in describe_effect({"legacy": True, "decision": "single run"})


def test_held_or_not():
    stored = ev("improved", 0.7, 0.6, 0.8)
    assert "held" in held_text(stored, ev("improved", 0.75, 0.7, 0.8))
    assert "did not hold" in held_text(stored, ev("inconclusive", 0.97, 0.9, 1.05))
