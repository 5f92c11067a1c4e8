"""How to run the probe: per-mode parameters, the shell line (host or guest) and its parser.

The guest sees the host's files read-only, so the same host-built binary runs in both; only
the caller decides where the line is executed (``subprocess`` here, ``schedcp_common.vm`` there).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path

from .build import WorkloadError, probe_binary
from .results import Result, parse

# Option name of a field when it is not just the field name with dashes.
_RENAMED = {"timeout_s": "timeout"}


def _flags(params: object) -> list[str]:
    out: list[str] = []
    for f in fields(params):  # type: ignore[arg-type]
        value = getattr(params, f.name)
        if value is None:
            continue  # the probe's own default (often derived from the CPU count)
        out += ["--" + _RENAMED.get(f.name, f.name).replace("_", "-"), str(value)]
    return out


@dataclass(frozen=True)
class Mixed:
    """Light phase (fewer runnable tasks than CPUs), then overload: hogs, niced hogs,
    short-lived tasks and a 2-5 ms sleeper. Defaults take ~4 s in the 2-vCPU guest."""

    light_s: float | None = None  # 1.2
    overload_s: float | None = None  # 2.8
    light_hogs: int | None = None  # CPUs - 1
    hogs: int | None = None  # CPUs + 1
    niced: int | None = None  # CPUs / 2
    nice: int | None = None  # 10
    short_par: int | None = None  # short-lived tasks in flight: CPUs
    short_iters: int | None = None  # work of one short-lived task
    chunk: int | None = None  # hog work between two clock reads
    burst: int | None = None  # interactive work per wake-up
    timeout_s: float | None = None
    out: str | None = None
    mode = "mixed"


@dataclass(frozen=True)
class Batch:
    """``tasks`` CPU-bound jobs (checksum, matmul, sort, compress) started at once; one is
    ``long_factor`` times longer. Defaults: 40 tasks, makespan ~12 s in the 2-vCPU guest."""

    tasks: int | None = None  # 40
    short_units: int | None = None  # 4 (a unit is ~50 ms solo in the guest)
    long_factor: float | None = None  # 40
    long_index: int | None = None  # last
    unit_scale: float | None = None  # scales the size of one unit (tests: tiny)
    types: str | None = None  # comma list, default all four
    pids_file: str | None = None  # "pid expected_work_units" lines, written once all are forked
    start_barrier: str | None = None  # FIFO (released by a byte) or path (released when it exists)
    timeout_s: float | None = None
    out: str | None = None
    mode = "batch"


@dataclass(frozen=True)
class Latency:
    """A 5 ms periodic task's wake-up delay while ``hogs`` (default 2 x CPUs) CPU hogs run."""

    duration_s: float | None = None  # 2
    hogs: int | None = None
    period_ms: float | None = None  # 5
    chunk: int | None = None
    burst: int | None = None
    pids_file: str | None = None  # "pid class" lines, written once all are forked
    start_barrier: str | None = None  # as for Batch: fill a targets map before they run
    timeout_s: float | None = None
    out: str | None = None
    mode = "latency"


Params = Mixed | Batch | Latency


@dataclass(frozen=True)
class Invocation:
    """A probe run: the argv/shell line to execute anywhere and the parser of what it prints."""

    argv: tuple[str, ...]
    mode: str

    @property
    def line(self) -> str:
        return shlex.join(self.argv)

    def parse(self, text: str) -> Result:
        return parse(text, self.mode)


def invocation(params: Params, binary: Path | None = None) -> Invocation:
    binary = binary or probe_binary()
    return Invocation((str(binary), params.mode, *_flags(params)), params.mode)


def run_host(params: Params, timeout: float = 120, binary: Path | None = None) -> Result:
    """Run the probe here and parse its result (tests, and the host side of benchmarks)."""
    inv = invocation(params, binary)
    try:
        proc = subprocess.run(inv.argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:  # the probe's workers die with it (PDEATHSIG)
        raise WorkloadError(f"probe {inv.mode} ran over {timeout} s") from e
    if proc.returncode == 2:
        raise WorkloadError(f"probe {inv.mode} failed: {proc.stderr.strip()}")
    return inv.parse(proc.stdout)
