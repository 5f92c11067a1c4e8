"""stress-ng --cpu: the CPU hogs the latency workloads run against; its bogo-ops per second of
real time are the hogs' throughput (the "no worse than 0.8x the default's" check)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .base import BadOutput, Workload


@dataclass(frozen=True)
class StressCpu(Workload):
    per_cpu: int = 2  # hogs per CPU

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        return ["stress-ng", "--cpu", str(self.per_cpu * cpus), "--cpu-method", "int64",
                "--timeout", f"{max(1, round(seconds))}s", "--metrics-brief"]

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        # "stress-ng: metrc: [pid] cpu  <bogo ops> <real s> <usr s> <sys s> <ops/s real> ..."
        m = re.search(r"\]\s+cpu\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", stdout)
        if not m:
            raise BadOutput(f"stress-ng printed no cpu metrics line: {stdout[-300:]}")
        return {"bogo_ops": float(m.group(1)), "real_s": float(m.group(2)),
                "bogo_ops_per_s": float(m.group(5))}


WORKLOAD = StressCpu(
    name="stress-cpu", kind="load",
    measures="throughput of 2 CPU hogs per CPU (bogo ops per second of real time)",
    parsed_from="the 'metrc: ... cpu' line of --metrics-brief",
    tools=(("stress-ng", "stress-ng"),))
