"""hackbench (rt-tests): groups of senders and receivers passing messages over sockets; the
time to pass them all. Many short wake-ups: the scheduler's wake-up path under contention."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .base import BadOutput, Workload


@dataclass(frozen=True)
class Hackbench(Workload):
    groups: int = 2
    loops_per_second: int = 40  # in the 2-vCPU TCG guest, ~1 s of work per 40 loops

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        loops = max(5, int(self.loops_per_second * seconds))
        return ["hackbench", "-g", str(self.groups), "-l", str(loops), "-s", "100"]

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        m = re.search(r"^Time:\s*([0-9.]+)", stdout, re.M)
        if not m:
            raise BadOutput(f"hackbench printed no 'Time:' line: {stdout[-300:]}")
        return {"time_s": float(m.group(1))}


WORKLOAD = Hackbench(
    name="hackbench", kind="latency",
    measures="time for 2 groups x 20 sender/receiver processes to pass their messages (s)",
    parsed_from="the 'Time: S' line",
    tools=(("hackbench", "rt-tests"),))
