"""Median with a percentile-bootstrap interval: the one place the tables get their statistics
(to be swapped for the sound A/B module when it lands)."""

from __future__ import annotations

import random
import statistics


def median_ci(values: list[float], level: float = 0.95, resamples: int = 2000,
              seed: int = 1) -> tuple[float, float, float]:
    """(median, low, high). With fewer than 3 values the interval is just their range."""
    if not values:
        raise ValueError("no values")
    med = statistics.median(values)
    if len(values) < 3:
        return med, min(values), max(values)
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values)))
                  for _ in range(resamples))
    lo = meds[int((1 - level) / 2 * resamples)]
    hi = meds[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return med, lo, hi


def fmt(values: list[float], digits: int = 3) -> str:
    """'median [low, high] n=N' for a table cell."""
    if not values:
        return "(no run)"
    med, lo, hi = median_ci(values)
    return f"{med:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}] n={len(values)}"
