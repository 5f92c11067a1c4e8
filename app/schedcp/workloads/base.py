"""What a catalogue workload is: a third-party program, what it measures, how its output parses.

Stdlib only: the same modules run on the host (tests) and inside the micro-VM (benchmarks, the
demo), where Python is slow and the venv's extras are not needed. A workload never finds its
processes by name: the runner knows them by place (the process it started, its cgroup, the
n-th child of a batch).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class ToolMissing(RuntimeError):
    """A workload's program is not installed; the message names the Debian package."""


class BadOutput(RuntimeError):
    """The program ran but printed nothing we can parse (its output is quoted)."""


@dataclass(frozen=True)
class Workload:
    """One catalogue entry. ``kind``: latency (a target whose delays we measure), load (CPU
    pressure whose throughput we measure), batch (39 short + 1 long jobs, makespan), build."""

    name: str
    kind: str
    measures: str  # one line: what the numbers mean
    parsed_from: str  # one line: which part of the program's output becomes the numbers
    tools: tuple[tuple[str, str], ...]  # (executable, Debian package)

    def require(self) -> None:
        """Fail loudly, naming the package, when a program is missing (never skip)."""
        for exe, pkg in self.tools:
            if shutil.which(exe) is None:
                raise ToolMissing(f"workload {self.name} needs {exe}: apt-get install {pkg} "
                                  "(or `make setup`)")

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        raise NotImplementedError

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        raise NotImplementedError


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` from /proc/*/stat (kernels without CONFIG_PROC_CHILDREN)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text.rpartition(")")[2].split()[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@dataclass
class Running:
    """A started workload; ``finish()`` waits (or stops it) and parses what it printed."""

    workload: Workload
    proc: subprocess.Popen
    workdir: Path
    started: float = field(default_factory=time.monotonic)

    def _signal(self, sig: int) -> None:
        """The whole process group (the program runs in its own session)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def wait_children(self, n: int, timeout: float = 60) -> None:
        """Until the program has ``n`` children (a load is really loading), or fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BadOutput(f"{self.workload.name} exited {self.proc.returncode} at start: "
                                f"{self.proc.stderr.read()[-300:] if self.proc.stderr else ''}")
            if len(children(self.proc.pid)) >= n:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.workload.name} started no {n} children in {timeout:g} s")

    def finish(self, timeout: float, stop: bool = False) -> dict[str, float]:
        if stop and self.proc.poll() is None:
            self._signal(signal.SIGINT)  # the tools print their report on it
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)  # its children too: they hold the output pipes
            out, err = self.proc.communicate()
            raise RuntimeError(f"{self.workload.name} ran over {timeout:g} s") from None
        wall = time.monotonic() - self.started
        if self.proc.returncode not in (0, -2, 130) or not (out or err):
            raise BadOutput(f"{self.workload.name} exited {self.proc.returncode}: "
                            f"{(err or out).strip()[-400:]}")
        parse = getattr(self.workload, "parse_stopped", None) if stop else None
        res = (parse or self.workload.parse)(out + "\n" + err, self.workdir)
        res.setdefault("wall_s", wall)
        return res


def start(w: Workload, cpus: int, seconds: float, workdir: Path,
          cgroup: Path | None = None) -> Running:
    """Start ``w`` (in ``cgroup``, joined before exec, so every thread and child is in it)."""
    w.require()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = w.argv(cpus, seconds, workdir)
    if cgroup is not None:
        argv = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *argv]
    proc = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    return Running(w, proc, workdir)


def run(w: Workload, cpus: int, seconds: float, workdir: Path,
        timeout: float = 600) -> dict[str, float]:
    """Run ``w`` alone to completion and parse its numbers."""
    return start(w, cpus, seconds, workdir).finish(timeout)
