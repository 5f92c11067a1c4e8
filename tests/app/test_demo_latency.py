"""The demo's latency part on the host: the table it prints from a trial set (the VM test in
test_demo.py runs the part itself)."""

from __future__ import annotations

from schedcp.demo_latency import FrameRun, table
from schedcp.measure import StopRule, TrialRunner

M = "\u2212"


def _trials(a: FrameRun, b: FrameRun):
    arm = {"now": "B"}
    runs: list[FrameRun] = []

    def measure() -> FrameRun:
        runs.append(a if arm["now"] == "A" else b)
        return runs[-1]

    ts = TrialRunner(StopRule.for_goal("responsiveness")).run(
        measure, lambda x: arm.__setitem__("now", x), "wake_p99_ms")
    return ts, runs


def test_the_table_shows_both_arms_and_both_effects_with_their_runs():
    a = FrameRun(wake_p99_ms=12.0, seconds=1, deadline_miss_ratio=0.48, fps=31.0,
                 hog_ops_per_s=1000.0)
    b = FrameRun(wake_p99_ms=0.06, seconds=1, deadline_miss_ratio=0.0, fps=60.0,
                 hog_ops_per_s=880.0)
    ts, runs = _trials(a, b)
    text = table(ts, runs, 6000)
    rows = {line.split("  ")[1].strip(): line for line in text.splitlines()
            if line.startswith("  ") and "runs)" in line}
    assert set(rows) == {"kernel default", "interactive slice_us=6000"}, text
    assert "0.48" in rows["kernel default"] and "12.000 ms" in rows["kernel default"]
    assert "1.00x" in rows["kernel default"] and "0.88x" in rows["interactive slice_us=6000"]
    assert f"effect of interactive: deadline-miss ratio {M}100 % ({M}100" in text
    assert f"effect of interactive: wake-up p99 {M}" in text and "5+5 runs)" in text


def test_no_misses_on_either_side_is_no_measurable_effect_not_a_win():
    a = FrameRun(wake_p99_ms=2.0, seconds=1, deadline_miss_ratio=0.0, fps=60.0)
    b = FrameRun(wake_p99_ms=0.06, seconds=1, deadline_miss_ratio=0.0, fps=60.0)
    ts, runs = _trials(a, b)
    text = table(ts, runs, 6000)
    assert "no measurable effect on deadline-miss ratio" in text
    assert f"wake-up p99 {M}97 %" in text  # 0.06 / 2.0
    assert "hogs work" in text and "-" in text.splitlines()[-4]  # no hog numbers: a dash
