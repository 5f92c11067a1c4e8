"""Log-processing batch: numeric ``sort`` of 39 short shuffled files and one 39x longer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .batch import Batch, seq_file


@dataclass(frozen=True)
class SortBatch(Batch):
    lines_per_unit: int = 8_000

    def prepare(self, workdir: Path) -> None:
        for u in set(self.units()):
            seq_file(workdir, u, int(self.lines_per_unit * self.unit_scale), shuffled=True)

    def job(self, index: int, units: int, workdir: Path) -> list[str]:
        f = seq_file(workdir, units, int(self.lines_per_unit * self.unit_scale), shuffled=True)
        return ["sort", "-n", "--parallel=1", "-S", "64M", "-T", str(workdir), str(f)]


WORKLOAD = SortBatch(
    name="batch-sort", kind="batch",
    measures="makespan of 39 short + 1 long sort -n jobs, and its ratio to the lower bound",
    parsed_from="the jobs' exits (wait4: each job's CPU time); sort's output is discarded",
    tools=(("sort", "coreutils"), ("awk", "mawk"), ("seq", "coreutils")))
