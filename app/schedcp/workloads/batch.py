"""Batch long tail from real tools: 39 short jobs and one long one, all started at once.

The runner is the batch's parent: it forks the jobs itself, each held at a gate (a FIFO opened
for reading) until its hint is in place, and knows every job by birth order, never by name.
Each job's input size in "units" is its expected work (what a workload profile would say);
``os.wait4`` gives each job's own CPU time, from which the makespan's lower bound,
max(longest job, total CPU / CPUs), is computed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .base import Workload

JOBS = 40
LONG = JOBS - 1  # the last-born job is the long one: the worst order for a FIFO-like default


@dataclass(frozen=True)
class Batch(Workload):
    short_units: int = 1
    long_units: int = 39  # about the shorts' total: the long job decides the makespan
    unit_scale: float = 1.0  # tests shrink it

    def units(self) -> list[int]:
        return [self.long_units if i == LONG else self.short_units for i in range(JOBS)]

    def prepare(self, workdir: Path) -> None:
        """Write inputs (once per size) in ``workdir``; subclasses say how."""

    def job(self, index: int, units: int, workdir: Path) -> list[str]:
        raise NotImplementedError

    def run_batch(self, cpus: int, workdir: Path, timeout: float = 900,
                  on_forked: Callable[[list[tuple[int, int]]], None] | None = None
                  ) -> dict[str, float]:
        """Fork all jobs behind the gate, call ``on_forked([(pid, units)...])`` (hints), open
        the gate, reap. Returns makespan, lower bound and their ratio."""
        self.require()
        workdir.mkdir(parents=True, exist_ok=True)
        self.prepare(workdir)
        gate = workdir / "gate"
        gate.unlink(missing_ok=True)
        os.mkfifo(gate)
        jobs: list[tuple[int, int]] = []
        procs = {}
        try:
            for i, u in enumerate(self.units()):
                argv = ["sh", "-c", 'exec 3<"$0"; exec 3<&-; exec "$@"', str(gate),
                        *self.job(i, u, workdir)]
                p = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                procs[p.pid] = (i, p)
                jobs.append((p.pid, u))
            if on_forked:
                on_forked(jobs)
            _all_at_gate(list(procs), gate)
            before = {i: _cpu_s(pid) for pid, (i, _) in procs.items()}  # shell start-up
            t0 = time.monotonic()
            fd = os.open(gate, os.O_RDWR)  # every job, blocked or not yet at its open, goes
            cpu: dict[int, float] = {}
            deadline = t0 + timeout
            while len(cpu) < len(procs):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"batch {self.name} ran over {timeout:g} s")
                pid, status, ru = os.wait4(-1, 0)
                if pid not in procs:
                    continue
                i, p = procs[pid]
                p.returncode = os.waitstatus_to_exitcode(status)
                if p.returncode != 0:
                    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
                    raise RuntimeError(f"batch {self.name}: job {i} exited {p.returncode}: "
                                       f"{err.strip()[-300:]}")
                cpu[i] = max(0.0, ru.ru_utime + ru.ru_stime - before[i])
            makespan = time.monotonic() - t0
            os.close(fd)
        finally:
            for _, p in procs.values():
                if p.returncode is None:
                    p.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                        p.wait(5)
                if p.stderr:
                    p.stderr.close()
            gate.unlink(missing_ok=True)
        total = sum(cpu.values())
        bound = max(cpu[LONG], total / cpus)
        return {"makespan_s": makespan, "lower_bound_s": bound, "vs_bound": makespan / bound,
                "long_cpu_s": cpu[LONG], "total_cpu_s": total}


def _cpu_s(pid: int) -> float:
    """CPU time so far, 0 if it is gone. wait4's rusage is adjusted to the scheduler's exact
    runtime, so the start-up subtracted from it must be exact too: /proc/<pid>/schedstat's
    nanoseconds, not /proc/<pid>/stat's 10 ms clock ticks (truncating those over-counted each
    job by up to a tick, and 40 jobs put the bound 15 % above the makespan)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _all_at_gate(pids: list[int], gate: Path, timeout: float = 120) -> None:
    """Until every job blocks opening the gate: its start-up is then done and not counted."""
    deadline = time.monotonic() + timeout
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                if Path(f"/proc/{pid}/wchan").read_text() in ("wait_for_partner", "fifo_open"):
                    waiting.discard(pid)
            except OSError:
                waiting.discard(pid)
        time.sleep(0.01)


def seq_file(workdir: Path, units: int, lines_per_unit: int, shuffled: bool = False) -> Path:
    """A text input of ``units`` units made by coreutils (cached by size in ``workdir``)."""
    path = workdir / f"in-{units}-{lines_per_unit}{'-shuf' if shuffled else ''}.txt"
    if not path.exists():
        n = max(1, units * lines_per_unit)
        # shuffled: a fixed multiplicative hash of each line number (deterministic, no seed)
        cmd = f"seq {n}" + (" | awk '{printf \"%.0f\\n\", ($1 * 2654435761) % 4294967296}'"
                            if shuffled else "")
        tmp = path.with_suffix(".tmp")
        subprocess.run(["sh", "-c", f"{cmd} > {tmp}"], check=True)
        tmp.rename(path)
    return path
