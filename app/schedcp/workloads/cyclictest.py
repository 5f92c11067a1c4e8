"""cyclictest (rt-tests): one SCHED_OTHER thread wakes every 5 ms; its wake-up delay.

SCHED_OTHER on purpose: sched_ext schedules the normal class, real-time threads bypass it.
The JSON report holds a per-microsecond histogram (up to 100 ms; later wake-ups count as
overflows and as "above 100 ms" in the percentiles)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .base import BadOutput, Workload

HIST_US = 100_000


@dataclass(frozen=True)
class Cyclictest(Workload):
    period_us: int = 5000

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        loops = max(10, int(seconds * 1e6 / self.period_us))
        return ["cyclictest", "-m", "-q", "--policy=other", "-t1", "-i", str(self.period_us),
                "-l", str(loops), "-h", str(HIST_US), f"--histfile={workdir / 'hist.txt'}",
                f"--json={workdir / 'cyclictest.json'}"]

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        try:
            doc = json.loads((workdir / "cyclictest.json").read_text())
            t = doc["thread"]["0"]
        except (OSError, ValueError, KeyError) as e:
            raise BadOutput(f"cyclictest wrote no usable JSON ({e}): {stdout[-300:]}") from None
        hist = sorted((int(us), int(n)) for us, n in t["histogram"].items())
        total = int(t["cycles"])
        if total <= 0:
            raise BadOutput(f"cyclictest measured nothing: {stdout[-300:]}")

        def pct(q: float) -> float:
            need, seen = q / 100 * total, 0
            for us, n in hist:
                seen += n
                if seen >= need:
                    return us / 1000
            return float(t["max"]) / 1000  # in the overflow: the max is the best bound we have

        return {"samples": total, "p50_ms": pct(50), "p99_ms": pct(99),
                "max_ms": float(t["max"]) / 1000, "avg_ms": float(t["avg"]) / 1000}


WORKLOAD = Cyclictest(
    name="cyclictest", kind="latency",
    measures="wake-up latency of a 5 ms periodic SCHED_OTHER thread (p50/p99/max, ms)",
    parsed_from="--json report: per-microsecond histogram, cycles, max",
    tools=(("cyclictest", "rt-tests"),))
