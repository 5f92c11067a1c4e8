"""Race-tolerant /proc readers for the desktop services (processes vanish while we look: every
reader returns an empty value rather than raising). The same as ``schedcp.analysis.procfs``,
kept here so the tray's services import without the analysis engine (psutil and friends)."""

from __future__ import annotations

import os


def read_text(path: str) -> str:
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
