"""A/B trials: the one place that decides whether a scheduler changed a workload's metric.

Every caller (the agent loop, and through it the tray's Optimize, profile re-checks,
``schedcp optimize`` and MCP) measures a candidate the same way:

1. the first run of the workload (the cold one, carrying the profiler) is a warm-up the caller
   discards; no trial below runs with a profiler attached;
2. baseline (A: what ran before) and candidate (B) alternate A B B A A B …, so drift of the
   machine (thermal, other users, a cache warming up) hits both sides alike;
3. after each pair, from ``min_pairs`` on, the ratio B/A gets an exact confidence interval
   (:mod:`schedcp.measure.stats`); the set stops early when the interval clearly clears the
   improvement threshold (improved), clearly exceeds the regression threshold (regressed) or
   clearly misses the improvement threshold (no useful effect possible: inconclusive), and
   otherwise goes on up to a cap that the goal's time budget and the run's length allow;
4. a run that exits non-zero, is killed or whose output says it failed is a failed trial, never
   a time: under B the candidate failed; under A the workload itself is broken (invalid).

Decisions: ``improved`` / ``regressed`` only when significant, ``inconclusive`` otherwise (neither
kept as a win nor banned), ``failed``, ``invalid`` (the baseline failed: nothing learned about
the candidate), ``cancelled``.

API::

    runner = TrialRunner(StopRule.for_goal("throughput"), progress=print, cancel=event)
    trials = runner.run(measure=lambda: executor.measure(), switch=put_arm_in_place,
                        metric="makespan_s")
    trials.decision, trials.estimate, trials.evidence()

``measure()`` returns a :class:`schedcp.model.Metrics` (``failed`` set for a failed run);
``switch("A"|"B")`` puts that arm's scheduler in place and may raise to abort the set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..model import Metrics
from .stats import Estimate, median, ratio_interval, spread

IMPROVED, REGRESSED, INCONCLUSIVE = "improved", "regressed", "inconclusive"
FAILED, INVALID, CANCELLED = "failed", "invalid", "cancelled"
UNITS = {"makespan_s": "s", "runqueue_wait_ms_per_s": "ms/s", "wake_p99_ms": "ms",
         "deadline_miss_ratio": ""}
# seconds of trials one candidate may cost, per goal: a person waiting on a foreground app
# gets fewer runs than a batch left to optimize
BUDGET_S = {"responsiveness": 90.0, "balanced": 240.0, "battery": 240.0, "throughput": 360.0}


@dataclass(frozen=True)
class StopRule:
    """When a trial set may stop, and what it then concludes."""

    confidence: float = 0.98  # two-sided; each side 1 %
    improve: float = 0.02  # an improvement must clear this fraction with confidence
    regress: float = 0.05  # a regression must exceed this fraction with confidence (a ban)
    min_pairs: int = 5  # the fewest with an exact 98 % interval (4+4 cannot reach 98 %)
    max_pairs: int = 10
    budget_s: float | None = None  # caps the pairs from the length of a run

    @classmethod
    def for_goal(cls, goal: str, **kw: Any) -> StopRule:
        return cls(budget_s=BUDGET_S.get(goal, 240.0), **kw)

    def cap(self, run_s: float | None) -> int:
        """Pairs allowed for runs of ``run_s`` seconds (never below ``min_pairs``)."""
        if self.budget_s is None or not run_s or run_s <= 0:
            return self.max_pairs
        return max(self.min_pairs, min(self.max_pairs, int(self.budget_s // (2 * run_s))))

    def verdict(self, est: Estimate | None, final: bool) -> str | None:
        """The decision for an interval, or None to go on measuring."""
        if est is not None:
            if est.high < 1 - self.improve:
                return IMPROVED
            if est.low > 1 + self.regress:
                return REGRESSED
            # not even the best case is a useful improvement, and it does not look like a
            # regression worth confirming (that one goes on: a significant one is banned)
            if est.low > 1 - self.improve and est.ratio < 1 + self.regress:
                return INCONCLUSIVE
        return INCONCLUSIVE if final else None


@dataclass
class Trial:
    arm: str  # "A" (baseline) or "B" (candidate)
    value: float | None  # the metric, None for a failed run
    seconds: float
    failed: str = ""  # why the run does not count


@dataclass
class Progress:
    """Reported after every run: enough for a progress line or bar."""

    run: int  # runs done in this set
    max_runs: int  # the cap as it stands (it is fixed after the first run)
    arm: str
    value: float | None
    estimate: Estimate | None
    failed: str = ""

    def line(self, metric: str = "makespan_s") -> str:
        from .effect import interval_text

        unit = UNITS.get(metric, "")
        what = (f"failed: {self.failed}" if self.failed
                else f"{self.value:.3f} {unit}".rstrip() if self.value is not None else "-")
        side = "baseline" if self.arm == "A" else "candidate"
        est = f"; so far {interval_text(self.estimate)}" if self.estimate else ""
        return f"trial {self.run}/{self.max_runs} ({side}): {what}{est}"


@dataclass
class TrialSet:
    metric: str
    trials: list[Trial] = field(default_factory=list)
    decision: str = INCONCLUSIVE
    estimate: Estimate | None = None
    reason: str = ""
    rule: StopRule = field(default_factory=StopRule)

    def values(self, arm: str) -> list[float]:
        return [t.value for t in self.trials if t.arm == arm and t.value is not None]

    @property
    def improvement(self) -> float | None:
        """Fraction by which the metric fell (0.18 = 18 % lower), from the ratio estimate."""
        return None if self.estimate is None else 1.0 - self.estimate.ratio

    @property
    def significant(self) -> bool:
        return self.decision in (IMPROVED, REGRESSED)

    def medians(self) -> tuple[float | None, float | None]:
        a, b = self.values("A"), self.values("B")
        return (median(a) if a else None, median(b) if b else None)

    def evidence(self, **context: Any) -> dict[str, Any]:
        """What a lesson stores: sample counts, medians, spreads, interval, units, context
        (baseline scheduler, kernel, CPU model and count: pass them as keywords)."""
        a, b = self.values("A"), self.values("B")
        ma, mb = self.medians()
        est = self.estimate
        return {
            "metric": self.metric, "unit": UNITS.get(self.metric, ""), "decision": self.decision,
            "n_a": len(a), "n_b": len(b),
            "failed_runs": sum(1 for t in self.trials if t.failed),
            "median_a": ma, "median_b": mb,
            "spread_a": spread(a), "spread_b": spread(b),
            "ratio": est.ratio if est else None, "ratio_low": est.low if est else None,
            "ratio_high": est.high if est else None,
            "confidence": est.confidence if est else self.rule.confidence,
            "method": est.method if est else "",
            "a": [round(x, 6) for x in a], "b": [round(x, 6) for x in b],
            **context,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["improvement"] = self.improvement
        return d

    def companion(self, metric: str, values: list[float | None]) -> TrialSet:
        """The same runs judged on a second metric (``values``: one per trial, in order), with
        the same rule: a run measures several things, the set was stopped on one. A set that
        failed, was invalid or cancelled keeps that decision."""
        if len(values) != len(self.trials):
            raise ValueError(f"{len(values)} values for {len(self.trials)} trials")
        out = TrialSet(metric, rule=self.rule)
        out.trials = [Trial(t.arm, None if t.failed or v is None else float(v), t.seconds,
                            t.failed or ("" if v is not None else f"no {metric} measured"))
                      for t, v in zip(self.trials, values, strict=True)]
        a, b = out.values("A"), out.values("B")
        out.estimate = ratio_interval(a, b, self.rule.confidence) if a and b else None
        if self.decision in (FAILED, INVALID, CANCELLED):
            out.decision, out.reason = self.decision, self.reason
        else:
            out.decision = self.rule.verdict(out.estimate, final=True) or INCONCLUSIVE
            out.reason = f"judged on the runs of the {self.metric} set"
        return out


class TrialRunner:
    def __init__(self, rule: StopRule | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 cancel: threading.Event | None = None):
        self.rule = rule or StopRule()
        self.progress = progress
        self.cancel = cancel or threading.Event()

    def run(self, measure: Callable[[], Metrics], switch: Callable[[str], None],
            metric: str, first_arm: str = "B") -> TrialSet:
        """Alternate A and B (in the order B A A B B A … when ``first_arm`` is B, which saves a
        switch right after the candidate was deployed) until the rule stops the set."""
        rule = self.rule
        ts = TrialSet(metric, rule=rule)
        other = {"A": "B", "B": "A"}
        order = [first_arm, other[first_arm]]
        cap = rule.max_pairs
        current = first_arm  # the caller put it in place
        pair = 0
        while pair < cap:
            arms = order if pair % 2 == 0 else order[::-1]
            for arm in arms:
                if self.cancel.is_set():
                    ts.decision, ts.reason = CANCELLED, "cancelled by the user"
                    return self._close(ts)
                if arm != current:
                    switch(arm)
                    current = arm
                t0 = time.perf_counter()
                m = measure()
                secs = time.perf_counter() - t0
                value = getattr(m, metric, None)
                failed = m.failed or ("" if value is not None else f"no {metric} measured")
                ts.trials.append(Trial(arm, None if failed else float(value), secs, failed))
                if len(ts.trials) == 1:
                    cap = rule.cap(m.seconds or secs)
                if failed:
                    if arm == "B":
                        ts.decision = FAILED
                        ts.reason = f"a run under the candidate failed: {failed}"
                    else:
                        ts.decision, ts.reason = INVALID, (
                            f"a run under the baseline failed ({failed}): the workload itself "
                            "fails, nothing is learned about the candidate")
                    self._report(ts, arm, None, failed, cap)
                    return self._close(ts)
                self._report(ts, arm, float(value), "", cap)
            pair += 1
            if pair >= rule.min_pairs:
                ts.estimate = ratio_interval(ts.values("A"), ts.values("B"), rule.confidence)
                verdict = rule.verdict(ts.estimate, final=pair >= cap)
                if verdict is not None:
                    ts.decision = verdict
                    ts.reason = self._why(ts, pair, cap)
                    return self._close(ts)
        ts.decision, ts.reason = INCONCLUSIVE, self._why(ts, pair, cap)
        return self._close(ts)

    def _report(self, ts: TrialSet, arm: str, value: float | None, failed: str, cap: int) -> None:
        if self.progress is not None:
            a, b = ts.values("A"), ts.values("B")
            est = (ratio_interval(a, b, self.rule.confidence)
                   if len(a) >= 2 and len(b) >= 2 else None)
            self.progress(Progress(len(ts.trials), 2 * cap, arm, value, est, failed))

    def _why(self, ts: TrialSet, pair: int, cap: int) -> str:
        r = self.rule
        if ts.decision == IMPROVED:
            return f"the whole interval is more than {r.improve:.0%} better"
        if ts.decision == REGRESSED:
            return f"the whole interval is more than {r.regress:.0%} worse"
        if ts.estimate is not None and ts.estimate.low > 1 - r.improve:
            return f"even the interval's best case is less than {r.improve:.0%} better"
        return f"still inconclusive after {pair}+{pair} runs (the cap for this goal and run length)"

    @staticmethod
    def _close(ts: TrialSet) -> TrialSet:
        if ts.estimate is None and ts.values("A") and ts.values("B"):
            ts.estimate = ratio_interval(ts.values("A"), ts.values("B"), ts.rule.confidence)
        return ts
