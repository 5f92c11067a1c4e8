"""Per-uid rate limits: what bounds a runaway agent on the calls that cost CPU, disk or
kernel changes (verify needs no password for an active user)."""

from __future__ import annotations

import time
from dataclasses import dataclass

# per-uid token buckets (burst, seconds per refill); root is not limited (the root CLI, the admin)
RATE_LIMITS = {"VerifySource": (6, 60.0), "VerifyPolicy": (12, 30.0), "Deploy": (10, 30.0),
               "Switch": (10, 30.0)}


@dataclass
class Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets per (uid, method); a refused call costs nothing and says when to retry."""

    def __init__(self, limits: dict[str, tuple[int, float]], clock=time.monotonic):
        self.limits, self.clock = limits, clock
        self.buckets: dict[tuple[int, str], Bucket] = {}

    def take(self, uid: int, method: str) -> float:
        """0 if allowed (a token is used), else the seconds until the next token."""
        if uid == 0 or method not in self.limits:
            return 0.0
        burst, per = self.limits[method]
        now = self.clock()
        b = self.buckets.setdefault((uid, method), Bucket(float(burst), now))
        b.tokens = min(float(burst), b.tokens + (now - b.stamp) / per)
        b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) * per
