"""The A/B statistic against known distributions: published critical values, exact coverage,
and the decisions the stop rule takes for effects of known size."""

from __future__ import annotations

import math
import random

import pytest

from schedcp.measure.stats import critical_k, ratio_interval, spread
from schedcp.measure.trials import IMPROVED, INCONCLUSIVE, REGRESSED, StopRule, TrialRunner
from schedcp.model import Metrics


@pytest.mark.parametrize(("n", "alpha_two_sided", "u_crit"), [
    (5, 0.05, 2), (5, 0.02, 1), (6, 0.05, 5), (8, 0.05, 13), (10, 0.05, 23), (10, 0.02, 19)])
def test_critical_values_match_the_published_mann_whitney_table(n, alpha_two_sided, u_crit):
    # the table's U is the largest value still significant; the interval uses k = U + 1
    assert critical_k(n, n, alpha_two_sided / 2) == u_crit + 1


def test_too_few_runs_for_the_confidence_give_no_interval():
    assert ratio_interval([1.0, 1.1, 0.9, 1.0], [0.5, 0.5, 0.5, 0.5], 0.98) is None
    assert ratio_interval([1.0] * 4, [0.5] * 4, 0.95) is not None
    assert ratio_interval([], [1.0], 0.9) is None and ratio_interval([-1.0] * 5, [1.0] * 5) is None


def test_zero_is_a_value_not_an_error():
    """A runqueue wait of 0 is the best possible: no crash, and zero vs zero is no change."""
    assert ratio_interval([0.0] * 5, [0.0] * 5).ratio == 1.0
    est = ratio_interval([2.0, 2.2, 1.9, 2.1, 2.0], [0.0, 0.0, 0.01, 0.0, 0.0])
    assert est.high < 0.05


@pytest.mark.parametrize("dist", ["lognormal", "skewed"])
def test_interval_covers_the_true_ratio_as_often_as_it_claims(dist):
    """Exactness: 98 % intervals of a known ratio 0.8, for log-normal and for heavily skewed
    (exponential-tailed) run times, over 1500 seeded trial sets of 6+6 runs."""
    rng = random.Random(7)

    def draw() -> float:
        if dist == "lognormal":
            return 20.0 * math.exp(rng.gauss(0, 0.08))
        return 20.0 * (1 + rng.expovariate(1 / 0.1))  # a floor and a long tail

    covered = 0
    for _ in range(1500):
        a = [draw() for _ in range(6)]
        b = [0.8 * draw() for _ in range(6)]
        est = ratio_interval(a, b, 0.98)
        covered += est.low <= 0.8 <= est.high
    assert covered / 1500 >= 0.97, covered / 1500


def test_one_wild_run_moves_the_interval_by_one_rank_not_by_its_size():
    a = [20.0, 20.4, 19.8, 20.1, 19.9, 20.2, 20.3, 19.7]
    b = [16.0, 16.3, 15.9, 16.1, 16.2, 15.8, 16.4, 160.0]  # one run stalled 10x
    est = ratio_interval(a, b, 0.98)
    assert est.high < 0.98 and est.ratio == pytest.approx(0.8, abs=0.02)
    # with fewer runs the same outlier is a real doubt: no decision either way
    est = ratio_interval(a[:6], b[2:], 0.98)
    assert est.low < 0.98 < est.high


def test_spread_is_the_cv_of_lognormal_runs():
    rng = random.Random(3)
    values = [math.exp(rng.gauss(0, 0.1)) for _ in range(4000)]
    assert spread(values) == pytest.approx(0.1, rel=0.08)
    assert spread([1.0]) is None


def _decide(effect: float, sigma: float, rng: random.Random, rule: StopRule) -> tuple[str, int]:
    arm = ["B"]

    def measure() -> Metrics:
        base = 20.0 * (effect if arm[0] == "B" else 1.0)
        return Metrics(makespan_s=base * math.exp(rng.gauss(0, sigma)), seconds=20.0)

    ts = TrialRunner(rule).run(measure, lambda a: arm.__setitem__(0, a), "makespan_s")
    return ts.decision, len(ts.trials)


@pytest.mark.parametrize(("effect", "want", "at_least"), [
    (0.80, IMPROVED, 0.95),  # a real 20 % gain is found
    (1.25, REGRESSED, 0.95),  # a real 25 % loss is found
    (1.00, INCONCLUSIVE, 0.97),  # no effect: neither kept nor banned
])
def test_known_effects_get_known_decisions(effect, want, at_least):
    rng = random.Random(12)
    rule = StopRule.for_goal("throughput")
    got = [_decide(effect, 0.08, rng, rule) for _ in range(400)]
    share = sum(d == want for d, _ in got) / len(got)
    assert share >= at_least, (share, {d: sum(x == d for x, _ in got) for d, _ in got})
    if effect == 1.0:  # a null candidate is rarely kept and even more rarely banned
        assert sum(d == IMPROVED for d, _ in got) / len(got) <= 0.02
        assert sum(d == REGRESSED for d, _ in got) / len(got) <= 0.01
    else:  # a clear effect stops early
        runs = sorted(n for _, n in got)
        assert runs[len(runs) // 2] <= 12
