"""`perf bench sched pipe`: two tasks ping-pong over a pipe; microseconds per round trip,
i.e. two wake-ups each way. Debian's linux-perf runs on the guest's newer kernel too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .base import BadOutput, Workload


@dataclass(frozen=True)
class PerfPipe(Workload):
    loops_per_second: int = 1000  # bounded: under a FIFO with hogs, a trip can take 40 ms

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        return ["perf", "bench", "sched", "pipe", "-l",
                str(max(100, int(self.loops_per_second * seconds)))]

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        t = re.search(r"Total time:\s*([0-9.]+)\s*\[sec\]", stdout)
        us = re.search(r"([0-9.]+)\s*usecs/op", stdout)
        if not (t and us):
            raise BadOutput(f"perf bench sched pipe printed no total/usecs per op: "
                            f"{stdout[-300:]}")
        return {"time_s": float(t.group(1)), "usecs_per_op": float(us.group(1))}


WORKLOAD = PerfPipe(
    name="perf-pipe", kind="latency",
    measures="pipe ping-pong round trip between two tasks (usecs/op; lower is better)",
    parsed_from="'Total time: S [sec]' and 'U usecs/op'",
    tools=(("perf", "linux-perf"),))
