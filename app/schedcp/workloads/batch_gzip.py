"""Compression batch: ``gzip -9`` of 39 short text files and one 39x longer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .batch import Batch, seq_file


@dataclass(frozen=True)
class GzipBatch(Batch):
    lines_per_unit: int = 40_000

    def prepare(self, workdir: Path) -> None:
        for u in set(self.units()):
            seq_file(workdir, u, int(self.lines_per_unit * self.unit_scale))

    def job(self, index: int, units: int, workdir: Path) -> list[str]:
        return ["gzip", "-9", "-c", str(seq_file(workdir, units,
                                                 int(self.lines_per_unit * self.unit_scale)))]


WORKLOAD = GzipBatch(
    name="batch-gzip", kind="batch",
    measures="makespan of 39 short + 1 long gzip -9 jobs, and its ratio to the lower bound",
    parsed_from="the jobs' exits (wait4: each job's CPU time); gzip's own output is discarded",
    tools=(("gzip", "gzip"), ("seq", "coreutils")))
