"""Small, race-tolerant readers for /proc: processes come and go while we look at them,
so every reader returns an empty value instead of raising when the process is gone."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def read_text(path: str | Path) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:  # gone, or not ours to read
        return ""


def comm(pid: int) -> str:
    return read_text(f"/proc/{pid}/comm").strip()


def cmdline(pid: int) -> list[str]:
    raw = read_text(f"/proc/{pid}/cmdline")
    return [a for a in raw.split("\0") if a] if raw else []


def exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:  # kernel threads, other users' processes, or already gone
        return ""


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the comm field (which may hold spaces and parentheses):
    index 0 is the state, 1 the parent, 4 the controlling tty, 11/12 utime/stime."""
    return read_text(f"/proc/{pid}/stat").rpartition(")")[2].split()


def ppid(pid: int) -> int:
    f = stat_fields(pid)
    return int(f[1]) if len(f) > 1 else 0


def cpu_ticks(pid: int) -> int:
    """User + system CPU time in clock ticks; -1 if the process is gone."""
    f = stat_fields(pid)
    return int(f[11]) + int(f[12]) if len(f) > 12 else -1


def tids(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def task_schedstat(pid: int, tid: int) -> tuple[int, int, int] | None:
    """(time on CPU ns, time runnable-but-waiting ns, timeslices) of one thread."""
    fields = read_text(f"/proc/{pid}/task/{tid}/schedstat").split()
    if len(fields) < 3:
        return None
    return int(fields[0]), int(fields[1]), int(fields[2])


def thread_schedstats(pid: int) -> dict[int, tuple[int, int, int]]:
    """Per-thread schedstat of a process: /proc/PID/schedstat covers only the main thread."""
    out = {}
    for tid in tids(pid):
        st = task_schedstat(pid, tid)
        if st is not None:
            out[tid] = st
    return out


def ctxt_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches summed over the process's threads."""
    vol = invol = 0
    for tid in tids(pid):
        for line in read_text(f"/proc/{pid}/task/{tid}/status").splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol += int(line.split()[1])
    return vol, invol


def psi_cpu_some_avg10(path: str = "/proc/pressure/cpu") -> float | None:
    """CPU pressure (% of time some task waited for a CPU, 10 s average); None without PSI."""
    for line in read_text(path).splitlines():
        if line.startswith("some "):
            for part in line.split()[1:]:
                key, _, value = part.partition("=")
                if key == "avg10":
                    return float(value)
    return None


def cpu_list(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``0-3,8,10-11``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus
