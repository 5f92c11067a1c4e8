"""Checksum batch: ``sha256sum`` of 39 short files and one 39x longer (each read 4 times)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .batch import Batch, seq_file


@dataclass(frozen=True)
class Sha256Batch(Batch):
    lines_per_unit: int = 100_000

    def prepare(self, workdir: Path) -> None:
        for u in set(self.units()):
            seq_file(workdir, u, int(self.lines_per_unit * self.unit_scale))

    def job(self, index: int, units: int, workdir: Path) -> list[str]:
        f = str(seq_file(workdir, units, int(self.lines_per_unit * self.unit_scale)))
        return ["sha256sum", f, f, f, f]


WORKLOAD = Sha256Batch(
    name="batch-sha256", kind="batch",
    measures="makespan of 39 short + 1 long sha256sum jobs, and its ratio to the lower bound",
    parsed_from="the jobs' exits (wait4: each job's CPU time); the digests are discarded",
    tools=(("sha256sum", "coreutils"), ("seq", "coreutils")))
