"""The tray's sentences for loop steps use the one effect wording (issue #12)."""

from __future__ import annotations

from schedcp.tray.wording import step_line
from schedcp.vocabulary import outcome_sentence as effect_text

M = "\u2212"


def _exec(decision: str, ratio: float, low: float, high: float) -> dict:
    trials = {"metric": "makespan_s", "decision": decision, "n_a": 6, "n_b": 6, "ratio": ratio,
              "ratio_low": low, "ratio_high": high}
    return {"role": "execution", "improvement": 1 - ratio,
            "outcome": {"plan": {"policy": "ljf", "tunables": {}}, "verified": True,
                        "before": {"makespan_s": 20.0}, "after": {"makespan_s": 20 * ratio},
                        "trials": trials}}


def test_a_win_a_loss_and_no_effect():
    kind, text = step_line(_exec("improved", 0.8, 0.75, 0.86), "throughput")
    assert kind == "good" and text == "ljf: batch run time 20 % faster (14\u202625 %, 6+6 runs)"
    kind, text = step_line(_exec("regressed", 1.2, 1.1, 1.3), "throughput")
    assert kind == "bad" and "20 % slower" in text
    # a 3 % "gain" that the interval does not support is no gain
    kind, text = step_line(_exec("inconclusive", 0.97, 0.9, 1.05), "throughput")
    assert kind == "neutral" and text.startswith("ljf: no measurable effect")
    # the notification/history wording comes from the same function
    assert effect_text(_exec("improved", 0.8, 0.75, 0.86)["outcome"], "throughput") == \
        "batch run time 20 % faster (14\u202625 %, 6+6 runs)"
