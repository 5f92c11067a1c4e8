"""The A/B statistic: ratio of the candidate's to the baseline's typical value, with an exact
distribution-free confidence interval.

Why Mann-Whitney (Hodges-Lehmann on log values) rather than a bootstrap: trial sets are small
(4-10 runs per side), where a percentile bootstrap of a median is lumpy and too narrow (it
cannot produce values it has not seen, so with 4+4 runs its "95 %" interval covers far less
than 95 %). The Mann-Whitney interval is exact for any continuous run-time distribution with
any n: under a scale shift b = r·a, the shift of log values has a confidence interval made of
order statistics of the n·m pairwise differences log(b_j) - log(a_i), with the coverage read
from the exact null distribution of U. One slow outlier run moves it by one order statistic,
not by its size. The point estimate (the median pairwise ratio) is the ratio of medians under
that model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

METHOD = "Mann-Whitney / Hodges-Lehmann on log values (exact)"


@lru_cache(maxsize=256)
def _u_cdf(n: int, m: int) -> tuple[float, ...]:
    """P(U <= u) for u = 0..n*m under the null (no ties), by the classic recursion."""
    # counts[i][j][u]: arrangements of i a's and j b's with statistic u
    prev = [[1] + [0] * (n * m) for _ in range(m + 1)]  # i = 0: U = 0 for any j
    for _ in range(1, n + 1):
        cur = [[0] * (n * m + 1) for _ in range(m + 1)]
        cur[0][0] = 1
        for j in range(1, m + 1):
            # last element is an a (adds j to U: it beats every b before it) or a b
            for u in range(n * m + 1):
                c = cur[j - 1][u]
                if u >= j:
                    c += prev[j][u - j]
                cur[j][u] = c
        prev = cur
    counts = prev[m]
    total = math.comb(n + m, n)
    acc, out = 0, []
    for c in counts:
        acc += c
        out.append(acc / total)
    return tuple(out)


def critical_k(n: int, m: int, alpha_one_sided: float) -> int:
    """The largest k with P(U <= k-1) <= alpha: the interval is [d_(k), d_(nm-k+1)] (1-based);
    0 when n and m are too small for that confidence."""
    cdf = _u_cdf(n, m)
    k = 0
    while k < len(cdf) and cdf[k] <= alpha_one_sided:
        k += 1
    return k


@dataclass(frozen=True)
class Estimate:
    """Candidate / baseline on a lower-is-better metric: ratio < 1 means the candidate is better."""

    ratio: float  # point estimate
    low: float  # confidence interval of the ratio
    high: float
    confidence: float  # two-sided coverage actually achieved (exact, ≥ the one asked for)
    n_a: int
    n_b: int
    method: str = METHOD

    @property
    def change(self) -> float:
        """Relative change of the metric (-0.18 = 18 % lower)."""
        return self.ratio - 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio_interval(a: list[float], b: list[float], confidence: float = 0.98) -> Estimate | None:
    """Ratio b/a of typical values with an exact two-sided ``confidence`` interval; None when a
    side is empty, a value is negative, or there are too few runs for that confidence.

    Zero is a real value for some metrics (a process that never waited for a CPU): values are
    floored at 1/1000 of the largest one before taking logs, so zero against zero is a ratio
    of 1 and zero against something is a large, finite change."""
    if not a or not b or min(a) < 0 or min(b) < 0:
        return None
    floor = max(max(a), max(b), 1e-9) * 1e-3
    la = [math.log(max(x, floor)) for x in a]
    lb = [math.log(max(x, floor)) for x in b]
    diffs = sorted(y - x for x in la for y in lb)
    n, m = len(a), len(b)
    k = critical_k(n, m, (1 - confidence) / 2)
    if k == 0:
        return None
    nm = n * m
    mid = (diffs[(nm - 1) // 2] + diffs[nm // 2]) / 2
    achieved = 1 - 2 * _u_cdf(n, m)[k - 1]
    return Estimate(math.exp(mid), math.exp(diffs[k - 1]), math.exp(diffs[nm - k]),
                    round(achieved, 4), n, m)


def spread(values: list[float]) -> float | None:
    """Robust relative spread: the median absolute deviation of log values x 1.4826 (≈ the
    coefficient of variation for log-normal run times); None with fewer than 2 values."""
    if len(values) < 2 or min(values) <= 0:
        return None
    logs = sorted(math.log(v) for v in values)
    med = _median(logs)
    return 1.4826 * _median(sorted(abs(x - med) for x in logs))


def _median(xs: list[float]) -> float:
    n = len(xs)
    return (xs[(n - 1) // 2] + xs[n // 2]) / 2


def median(values: list[float]) -> float:
    return _median(sorted(values))
