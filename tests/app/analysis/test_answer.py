"""Analyze answers (issue #18 item 3): a verdict with its number, what SchedCP would try and
why, in one record the History keeps."""

from __future__ import annotations

from schedcp.analysis.answer import answer, would_try


def prof(kind: str, wait_frac: float) -> dict:
    return {"kind": kind, "features": {"wait_frac": wait_frac, "cpus_used": 1.8, "ncpus": 2}}


def test_a_high_wait_gets_a_verdict_and_what_would_be_tried():
    a = answer(prof("interactive", 0.28), "responsiveness", "SuperTuxKart", can_switch=False,
               now=1.0)
    assert a.level == "high"
    assert a.verdict == ("SuperTuxKart (an interactive app) waits for a CPU 28 % of the time "
                         "it wants to run: that is high: it is often held up by other work.")
    assert a.would_try == would_try("interactive", "responsiveness") == ["interactive",
                                                                         "scx_bpfland"]
    assert a.next_step.startswith("On a kernel with sched_ext, SchedCP would try interactive, "
                                  "then scx_bpfland for responsiveness")
    assert "What is missing" in a.next_step
    step = a.to_step()
    assert step["role"] == "analysis" and step["t"] == 1.0 and step["app"] == "SuperTuxKart"


def test_levels_and_the_switchable_wording():
    assert answer(prof("batch", 0.10), "throughput", "make", True).level == "noticeable"
    low = answer(prof("game", 0.01), "responsiveness", "game", True)
    assert low.level == "low" and low.would_try == [] and "little to gain" in low.next_step
    on = answer(prof("game", 0.3), "balanced", "game", can_switch=True)
    assert on.next_step.startswith("SchedCP would try interactive, then scx_lavd for balanced")
    battery = answer(prof("idle", 0.3), "battery", "x", True)
    assert battery.would_try == ["powersave", "scx_flash"]  # the "*" rule for battery
