"""What the probe reports, as dataclasses parsed from its one-line JSON document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .build import WorkloadError


@dataclass(frozen=True)
class Summary:
    """Distribution of delays (wake-up delay or turnaround), in milliseconds."""

    count: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    @classmethod
    def of(cls, d: dict[str, Any] | None) -> Summary | None:
        return None if d is None else cls(**d)


@dataclass(frozen=True)
class Task:
    """One task of a mixed/latency phase. For class "short", the aggregate of all short tasks."""

    cls: str  # hog | niced | interactive | short
    index: int
    pid: int
    nice: int
    finished: bool
    exit_status: int
    cpu_s: float
    wall_s: float
    iters: int
    max_gap_ms: float  # longest wait without CPU (hogs), max wake delay, max turnaround
    wake: Summary | None = None
    missed: int = 0
    completed: int = 0
    turnaround: Summary | None = None

    @property
    def label(self) -> str:
        return f"{self.cls} #{self.index} (pid {self.pid}, nice {self.nice})"

    @classmethod
    def of(cls, d: dict[str, Any]) -> Task:
        return cls(
            cls=d["class"], index=d["index"], pid=d["pid"], nice=d["nice"],
            finished=d["finished"], exit_status=d["exit_status"], cpu_s=d["cpu_s"],
            wall_s=d["wall_s"], iters=d["iters"], max_gap_ms=d["max_gap_ms"],
            wake=Summary.of(d.get("wake")), missed=d.get("missed", 0),
            completed=d.get("completed", 0), turnaround=Summary.of(d.get("turnaround")),
        )


@dataclass(frozen=True)
class Phase:
    name: str
    planned_s: float
    duration_s: float
    elapsed_s: float  # until every task exited (or was killed after the grace period)
    runnable: int
    short_completed: int
    throughput_iters: int
    iters_per_s: float
    tasks: tuple[Task, ...]

    def of_class(self, *classes: str) -> list[Task]:
        return [t for t in self.tasks if t.cls in classes]

    @property
    def interactive(self) -> Task | None:
        found = self.of_class("interactive")
        return found[0] if found else None


@dataclass(frozen=True)
class MixedResult:
    status: str  # ok | timeout | interrupted
    ncpu: int
    duration_s: float
    params: dict[str, Any]
    phases: tuple[Phase, ...]

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)


@dataclass(frozen=True)
class LatencyResult:
    status: str
    ncpu: int
    duration_s: float
    params: dict[str, Any]
    wake: Summary | None
    missed: int
    tasks: tuple[Task, ...]


@dataclass(frozen=True)
class BatchTask:
    job: str  # checksum | matmul | sort | compress
    index: int
    pid: int
    long: bool
    units: int
    est_s: float  # solo runtime estimate from this run's calibration
    start_s: float  # relative to the release of all tasks
    end_s: float
    runtime_s: float
    cpu_s: float
    finished: bool


@dataclass(frozen=True)
class BatchResult:
    status: str  # ok | failed (a task did not finish) | timeout | interrupted
    ncpu: int
    makespan_s: float
    lower_bound_s: float  # max(longest task's solo estimate, total work / CPUs)
    ratio: float
    calibration_unit_s: dict[str, float]
    params: dict[str, Any]
    tasks: tuple[BatchTask, ...]


Result = MixedResult | LatencyResult | BatchResult


def find_document(text: str, mode: str) -> dict[str, Any]:
    """The probe's JSON line for ``mode`` in ``text`` (which may hold other console output)."""
    marker = f'{{"mode":"{mode}"'
    for line in reversed(text.splitlines()):
        at = line.find(marker)
        if at >= 0:
            try:
                return json.loads(line[at:])
            except json.JSONDecodeError as e:
                raise WorkloadError(f"probe {mode} printed broken JSON: {e}") from e
    tail = "\n".join(text.splitlines()[-5:])
    raise WorkloadError(f"probe {mode} printed no result; last output:\n{tail}")


def parse(text: str, mode: str) -> Result:
    """Parse the document the probe printed for ``mode``. Timeouts parse to empty results."""
    d = find_document(text, mode)
    status = d["status"]
    if mode == "mixed":
        phases = tuple(
            Phase(
                name=p["name"], planned_s=p["planned_s"], duration_s=p["duration_s"],
                elapsed_s=p["elapsed_s"], runnable=p["runnable"],
                short_completed=p["short_completed"], throughput_iters=p["throughput_iters"],
                iters_per_s=p["iters_per_s"], tasks=tuple(Task.of(t) for t in p["tasks"]),
            )
            for p in d.get("phases", [])
        )
        return MixedResult(status, d.get("ncpu", 0), d.get("duration_s", d.get("elapsed_s", 0.0)),
                           d.get("params", {}), phases)
    if mode == "latency":
        return LatencyResult(status, d.get("ncpu", 0), d.get("duration_s", 0.0),
                             d.get("params", {}), Summary.of(d.get("wake")), d.get("missed", 0),
                             tuple(Task.of(t) for t in d.get("tasks", [])))
    if mode == "batch":
        return BatchResult(status, d.get("ncpu", 0), d.get("makespan_s", 0.0),
                           d.get("lower_bound_s", 0.0), d.get("ratio", 0.0),
                           d.get("calibration_unit_s", {}), d.get("params", {}),
                           tuple(BatchTask(**t) for t in d.get("tasks", [])))
    raise WorkloadError(f"unknown probe mode {mode!r}")
