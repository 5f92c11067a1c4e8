"""The trial runner's mechanics: interleaving, the failed-trial rule, the cap, cancel, the
evidence it hands to a lesson."""

from __future__ import annotations

import threading

from schedcp.measure.effect import describe_effect
from schedcp.measure.trials import (
    CANCELLED,
    FAILED,
    IMPROVED,
    INCONCLUSIVE,
    INVALID,
    StopRule,
    TrialRunner,
)
from schedcp.model import Metrics


class Bench:
    """A scripted workload: the value of each run depends on the arm in place."""

    def __init__(self, a: float = 10.0, b: float = 8.0, fail_at: dict | None = None):
        self.arm, self.a, self.b = "B", a, b
        self.order: list[str] = []
        self.switches: list[str] = []
        self.fail_at = fail_at or {}  # run index -> failure text

    def measure(self) -> Metrics:
        i = len(self.order)
        self.order.append(self.arm)
        if i in self.fail_at:
            # a crash is fast: were it timed, it would "win"
            return Metrics(makespan_s=0.1, seconds=0.1, failed=self.fail_at[i])
        return Metrics(makespan_s=self.a if self.arm == "A" else self.b, seconds=1.0)

    def switch(self, arm: str) -> None:
        self.switches.append(arm)
        self.arm = arm


def test_arms_alternate_in_abba_blocks_and_stop_once_clear():
    bench = Bench()
    ts = TrialRunner(StopRule(confidence=0.95, min_pairs=4)).run(bench.measure, bench.switch,
                                                                 "makespan_s")
    assert ts.decision == IMPROVED and abs(ts.improvement - 0.2) < 1e-9
    assert bench.order == ["B", "A", "A", "B", "B", "A", "A", "B"]  # 4+4 at 95 %: enough
    assert len(bench.switches) == 4  # one switch per pair, not one per run
    bench = Bench()
    ts = TrialRunner().run(bench.measure, bench.switch, "makespan_s")  # 98 %: 5+5 at least
    assert ts.decision == IMPROVED and bench.order == ["B", "A", "A", "B"] * 2 + ["B", "A"]


def test_a_failed_run_under_the_candidate_is_a_failure_never_a_time():
    bench = Bench(fail_at={3: "exit status 1"})
    ts = TrialRunner().run(bench.measure, bench.switch, "makespan_s")
    assert ts.decision == FAILED and "exit status 1" in ts.reason
    assert len(ts.trials) == 4  # stopped at once
    assert 0.1 not in ts.values("B") and ts.values("B") == [8.0]
    ev = ts.evidence()
    assert ev["failed_runs"] == 1 and ev["decision"] == FAILED


def test_a_failed_run_under_the_baseline_makes_the_set_invalid():
    bench = Bench(fail_at={1: "killed by signal 9"})
    ts = TrialRunner().run(bench.measure, bench.switch, "makespan_s")
    assert ts.decision == INVALID and "baseline" in ts.reason


def test_the_goal_and_the_run_length_cap_the_set():
    rule = StopRule.for_goal("responsiveness")  # 90 s per candidate
    assert rule.cap(30.0) == rule.min_pairs and rule.cap(1.0) == rule.max_pairs
    assert StopRule.for_goal("throughput").cap(20.0) == 9
    bench = Bench(a=10.0, b=10.0)
    bench.values = iter([10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.3, 9.7, 10.4] * 5)

    def noisy() -> Metrics:
        m = bench.measure()
        return Metrics(makespan_s=next(bench.values), seconds=30.0, failed=m.failed)

    ts = TrialRunner(rule).run(noisy, bench.switch, "makespan_s")
    assert ts.decision == INCONCLUSIVE and len(ts.trials) <= 2 * max(rule.min_pairs, 5)


def test_cancel_stops_between_runs():
    cancel = threading.Event()
    bench = Bench()

    def measure() -> Metrics:
        cancel.set()
        return bench.measure()

    ts = TrialRunner(cancel=cancel).run(measure, bench.switch, "makespan_s")
    assert ts.decision == CANCELLED and len(ts.trials) == 1


def test_evidence_carries_what_a_lesson_needs():
    bench = Bench()
    seen = []
    ts = TrialRunner(progress=seen.append).run(bench.measure, bench.switch, "makespan_s")
    ev = ts.evidence(baseline_scheduler="kernel default", kernel="6.12", cpu_model="x", ncpus=2)
    assert ev["n_a"] == ev["n_b"] == len(ts.trials) // 2
    assert ev["median_a"] == 10.0 and ev["median_b"] == 8.0 and ev["unit"] == "s"
    assert ev["ratio_low"] <= ev["ratio"] <= ev["ratio_high"] and ev["confidence"] >= 0.98
    assert ev["baseline_scheduler"] == "kernel default" and ev["ncpus"] == 2
    assert len(seen) == len(ts.trials) and seen[-1].line().startswith(f"trial {len(seen)}/")


def test_a_companion_metric_is_judged_on_the_same_runs():
    bench = Bench()
    ts = TrialRunner().run(bench.measure, bench.switch, "makespan_s")
    # a second number from each run: 0.5 under the baseline, 0 (never missed) under the candidate
    misses = [0.5 if t.arm == "A" else 0.0 for t in ts.trials]
    other = ts.companion("deadline_miss_ratio", misses)
    assert other.decision == IMPROVED and other.estimate.high < 0.01
    assert other.values("A") == [0.5] * len(ts.values("A"))
    same = ts.companion("deadline_miss_ratio", [0.0] * len(ts.trials))  # zero against zero
    assert same.decision == INCONCLUSIVE and same.estimate.ratio == 1.0
    assert describe_effect(same.evidence()).startswith("no measurable effect on deadline-miss")
    assert describe_effect(other.evidence()).startswith("deadline-miss ratio \u2212100 %")
    bench = Bench(fail_at={3: "exit status 1"})
    failed = TrialRunner().run(bench.measure, bench.switch, "makespan_s")
    assert failed.companion("x", [1.0] * len(failed.trials)).decision == FAILED
