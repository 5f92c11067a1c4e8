"""`perf bench sched messaging`: perf's hackbench (process groups passing messages); total time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .base import BadOutput, Workload


@dataclass(frozen=True)
class PerfMessaging(Workload):
    groups: int = 2
    loops_per_second: int = 30

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        return ["perf", "bench", "sched", "messaging", "-g", str(self.groups), "-l",
                str(max(5, int(self.loops_per_second * seconds)))]

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        t = re.search(r"Total time:\s*([0-9.]+)\s*\[sec\]", stdout)
        if not t:
            raise BadOutput(f"perf bench sched messaging printed no total time: {stdout[-300:]}")
        return {"time_s": float(t.group(1))}


WORKLOAD = PerfMessaging(
    name="perf-messaging", kind="latency",
    measures="time for perf's process groups to pass all their messages (s)",
    parsed_from="'Total time: S [sec]'",
    tools=(("perf", "linux-perf"),))
