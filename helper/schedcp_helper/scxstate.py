"""What sched_ext is doing: its sysfs state, and its enable/disable events from the kernel log.

The kernel is the authority on whether a scheduler runs and why it stopped; this module only
reads what it says. Message formats are those of Linux 6.12 ``kernel/sched/ext.c``:

- ``sched_ext: BPF scheduler "NAME" enabled`` (``" (partial)"`` with SCX_OPS_SWITCH_PARTIAL)
- ``sched_ext: BPF scheduler "NAME" disabled (REASON)``, REASON from ``scx_exit_reason()``
- for error exits, a second line ``sched_ext: NAME: MESSAGE`` (e.g. the stalled task)
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

# SCHEDCP_SCX_SYSFS moves it: tests of the coexistence logic on kernels without sched_ext
SYSFS = Path(os.environ.get("SCHEDCP_SCX_SYSFS") or "/sys/kernel/sched_ext")

# scx_exit_reason() of 6.12 → what a person can do about it.
REASONS = {
    "unregistered from user space":
        "the loading process detached or exited (a normal stop, or the process died)",
    "unregistered from BPF":
        "the scheduler asked to exit (scx_bpf_exit); see its message",
    "unregistered from the main kernel":
        "the kernel unregistered it (e.g. a CPU hotplug or a kernel-initiated exit)",
    "disabled by sysrq-S":
        "someone pressed SysRq-S to get the default scheduler back",
    "runtime error":
        "the kernel caught the scheduler breaking a sched_ext rule; its message says which "
        "(a bug in the scheduler)",
    "scx_bpf_error":
        "the scheduler reported an error itself (scx_bpf_error); its message says why",
    "runnable task stall":
        "a runnable task was not run within the watchdog timeout (ops.timeout_ms): the "
        "scheduler failed to dispatch it; fix dispatch or raise the timeout",
}
ERROR_REASONS = frozenset({"runtime error", "scx_bpf_error", "runnable task stall"})

_ENABLED = re.compile(r'^sched_ext: BPF scheduler "(?P<ops>.*)" enabled(?P<partial> \(partial\))?$')
_DISABLED = re.compile(r'^sched_ext: BPF scheduler "(?P<ops>.*)" disabled \((?P<reason>[^)]*)\)$')
_DMESG = re.compile(r"^\[\s*(?P<ts>\d+\.\d+)\]\s?(?P<msg>.*)$")


@dataclass(frozen=True)
class ScxState:
    """``/sys/kernel/sched_ext``; ``supported`` False means the kernel lacks sched_ext."""

    supported: bool
    state: str = ""  # enabled | disabled | enabling | disabling
    ops: str = ""  # the running scheduler's name, "" when none
    enable_seq: int | None = None
    nr_rejected: int | None = None
    hotplug_seq: int | None = None
    switch_all: bool | None = None

    @property
    def enabled(self) -> bool:
        return self.state == "enabled"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def read_state(root: Path = SYSFS) -> ScxState:
    """Read whatever attributes this kernel has; older kernels lack some."""
    if not root.is_dir():
        return ScxState(supported=False)
    switch_all = _int(_read(root / "switch_all"))
    return ScxState(
        supported=True,
        state=_read(root / "state") or "",
        ops=_read(root / "root" / "ops") or "",
        enable_seq=_int(_read(root / "enable_seq")),
        nr_rejected=_int(_read(root / "nr_rejected")),
        hotplug_seq=_int(_read(root / "hotplug_seq")),
        switch_all=None if switch_all is None else bool(switch_all),
    )


@dataclass(frozen=True)
class LogRecord:
    """One kernel log line: ``seq`` from /dev/kmsg (None from dmesg), ``time`` since boot."""

    message: str
    time: float | None = None
    seq: int | None = None


@dataclass(frozen=True)
class ScxEvent:
    """A scheduler was enabled or disabled; for disabling, the kernel's reason and message."""

    kind: str  # "enabled" | "disabled"
    ops: str
    reason: str = ""  # scx_exit_reason() text, e.g. "runnable task stall"
    message: str = ""  # the scheduler's/kernel's detail line, e.g. "kworker/0:1[12] failed ..."
    partial: bool = False  # enabled for SCHED_EXT tasks only (SCX_OPS_SWITCH_PARTIAL)
    time: float | None = None
    seq: int | None = None

    @property
    def error(self) -> bool:
        return self.reason in ERROR_REASONS

    @property
    def explanation(self) -> str:
        """One sentence a person can act on."""
        if self.kind == "enabled":
            scope = "SCHED_EXT tasks only" if self.partial else "all normal tasks"
            return f'"{self.ops}" is scheduling {scope}'
        what = REASONS.get(self.reason, f"sched_ext stopped it ({self.reason})")
        detail = f": {self.message}" if self.message else ""
        return f'"{self.ops}" was stopped; {what}{detail}'


def parse_events(records: list[LogRecord]) -> list[ScxEvent]:
    """sched_ext enable/disable events in log order, each disable joined with its detail line."""
    events: list[ScxEvent] = []
    pending: ScxEvent | None = None  # an error disable still waiting for its "NAME: msg" line
    for rec in records:
        line = rec.message.rstrip("\n")
        if m := _ENABLED.match(line):
            pending = None
            events.append(ScxEvent("enabled", m["ops"], partial=bool(m["partial"]),
                                   time=rec.time, seq=rec.seq))
        elif m := _DISABLED.match(line):
            ev = ScxEvent("disabled", m["ops"], reason=m["reason"], time=rec.time, seq=rec.seq)
            events.append(ev)
            pending = ev if ev.error else None
        elif pending and line.startswith(f"sched_ext: {pending.ops}: "):
            msg = line.removeprefix(f"sched_ext: {pending.ops}: ")
            events[-1] = ScxEvent(**{**pending.__dict__, "message": msg})
            pending = None
    return events


def parse_kmsg(data: bytes) -> LogRecord | None:
    """One /dev/kmsg record: ``PRI,SEQ,USEC,FLAGS[,...];MESSAGE`` plus `` KEY=VAL`` lines."""
    head, sep, rest = data.decode(errors="replace").partition(";")
    if not sep:
        return None
    fields = head.split(",")
    try:
        seq, usec = int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        return None
    message = rest.split("\n", 1)[0]
    return LogRecord(message=message, time=usec / 1e6, seq=seq)


def parse_dmesg(text: str) -> list[LogRecord]:
    """``dmesg`` output (``[   4.398867] message``) into records without sequence numbers."""
    out = []
    for line in text.splitlines():
        m = _DMESG.match(line)
        out.append(LogRecord(m["msg"], float(m["ts"])) if m else LogRecord(line))
    return out


def read_kmsg(after_seq: int | None = None, path: str = "/dev/kmsg") -> list[LogRecord]:
    """Everything the kernel ring buffer still holds, without blocking; newer than ``after_seq``.

    Falls back to ``dmesg`` where /dev/kmsg cannot be opened (then ``after_seq`` is ignored).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return _dmesg()
    records = []
    try:
        while True:
            try:
                data = os.read(fd, 8192)  # one record per read
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:  # records were overwritten before we read them
                    continue
                raise
            if not data:
                break
            rec = parse_kmsg(data)
            if rec and (after_seq is None or (rec.seq or 0) > after_seq):
                records.append(rec)
    finally:
        os.close(fd)
    return records


def _dmesg() -> list[LogRecord]:
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_dmesg(out.stdout)


def last_seq(path: str = "/dev/kmsg") -> int | None:
    """The newest record's sequence number: a cursor to read only what happens next."""
    records = read_kmsg(path=path)
    seqs = [r.seq for r in records if r.seq is not None]
    return max(seqs) if seqs else None


def kernel_events(after_seq: int | None = None) -> list[ScxEvent]:
    """sched_ext events in the kernel log, optionally only those after a ``last_seq()`` cursor."""
    return parse_events(read_kmsg(after_seq))
