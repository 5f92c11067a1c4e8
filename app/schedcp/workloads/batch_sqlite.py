"""Query batch: ``sqlite3`` aggregating a generated table in memory; the long query scans 39x
the rows of a short one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .batch import Batch


@dataclass(frozen=True)
class SqliteBatch(Batch):
    rows_per_unit: int = 10_000

    def job(self, index: int, units: int, workdir: Path) -> list[str]:
        n = max(1, int(units * self.rows_per_unit * self.unit_scale))
        sql = ("WITH RECURSIVE t(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM t "
               f"WHERE x < {n}) SELECT count(*), sum(x % 7), max(length(hex(x))) FROM t;")
        return ["sqlite3", ":memory:", sql]


WORKLOAD = SqliteBatch(
    name="batch-sqlite", kind="batch",
    measures="makespan of 39 short + 1 long sqlite3 queries, and its ratio to the lower bound",
    parsed_from="the jobs' exits (wait4: each job's CPU time); query results are discarded",
    tools=(("sqlite3", "sqlite3"),))
