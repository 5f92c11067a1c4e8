"""New workloads as they start: fork/exec/exit events from the kernel's proc connector.

The watcher blocks in ``select`` on the netlink socket (no polling of /proc, no wake-ups when
nothing happens). An EXEC event carries only ids, so the name is read from /proc at once;
a process that is already gone yields an event with empty name fields rather than an error.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import procfs

# pyroute2 is imported when a watcher opens: it costs ~0.15 s, seconds in the TCG guest,
# and measure()/summarize() users should not pay for it.

_KINDS = {"PROC_EVENT_EXEC": "exec", "PROC_EVENT_EXIT": "exit", "PROC_EVENT_FORK": "fork"}
RCVBUF = 4 << 20  # a burst of a build's forks must not overflow the socket


@dataclass
class ProcEvent:
    kind: str  # "exec" | "exit" | "fork"
    pid: int
    tgid: int
    comm: str = ""
    exe: str = ""
    cmdline: list[str] = field(default_factory=list)
    ppid: int = 0
    exit_code: int | None = None  # exit only: the wait status
    timestamp_ns: int = 0  # kernel monotonic time of the event


class ExecWatcher:
    """Context manager yielding process events; threads are left out unless asked for.

    ``with ExecWatcher() as w: for ev in w.events(timeout=5): ...``
    """

    def __init__(self, kinds: tuple[str, ...] = ("exec", "exit"), threads: bool = False):
        self.kinds = set(kinds)
        self.threads = threads
        self.dropped = 0  # overflow episodes (ENOBUFS): events were lost
        self._sock = None
        self._raw = None
        self._marshal = None
        self._names: dict[int, tuple[str, str, list[str]]] = {}  # tgid -> names seen at exec

    def __enter__(self) -> ExecWatcher:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        from pyroute2 import ProcEventSocket
        from pyroute2.netlink.connector.cn_proc import ProcEventMarshal

        self._marshal = ProcEventMarshal()
        sock = ProcEventSocket()
        try:
            sock.bind()
            sock.control(listen=True)
            raw = sock.asyncore.socket if hasattr(sock, "asyncore") else sock
            with contextlib.suppress(OSError):  # capped by net.core.rmem_max: fine
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        except Exception:
            sock.close()
            raise
        self._sock, self._raw = sock, raw

    def close(self) -> None:
        if self._sock is None:
            return
        from pyroute2.netlink import NLMSG_DONE
        from pyroute2.netlink.connector.cn_proc import (
            CN_IDX_PROC,
            CN_VAL_PROC,
            PROC_CN_MCAST_IGNORE,
            proc_event_control,
        )

        with contextlib.suppress(Exception):  # stop listening; the reply is not awaited
            msg = proc_event_control()
            msg["action"] = PROC_CN_MCAST_IGNORE
            msg["idx"], msg["val"], msg["len"] = CN_IDX_PROC, CN_VAL_PROC, 4
            self._sock.put(msg, NLMSG_DONE, msg_flags=0, msg_seq=0)
        self._sock.close()
        self._sock = self._raw = None

    def fileno(self) -> int:
        if self._sock is None:
            raise RuntimeError("ExecWatcher is not open")
        # the netlink socket itself: pyroute2's own fileno() may be a descriptor of its
        # asyncio wrapper that becomes readable only on the thread that opened it
        return self._raw.fileno()

    def events(self, timeout: float | None = None) -> Iterator[ProcEvent]:
        """Events until ``timeout`` seconds have passed (forever when None)."""
        fd = self.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                continue
            try:
                data = self._raw.recv(1 << 16)
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the kernel dropped events; keep going
                    self.dropped += 1
                    continue
                raise
            for msg in self._marshal.parse(data):
                ev = self._convert(msg)
                if ev is not None:
                    yield ev

    def poll(self, timeout: float | None) -> list[ProcEvent]:
        """Wait up to ``timeout`` s for events, then return every one already queued: a
        burst (a batch forking its jobs) comes back as one list, and an idle wait costs one
        wake-up at its end."""
        fd = self.fileno()
        out: list[ProcEvent] = []
        wait = timeout
        while select.select([fd], [], [], wait)[0]:
            try:
                data = self._raw.recv(1 << 16)
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.dropped += 1
                continue
            for msg in self._marshal.parse(data):
                ev = self._convert(msg)
                if ev is not None:
                    out.append(ev)
            wait = 0
        return out

    def _remember(self, tgid: int, names: tuple[str, str, list[str]]) -> None:
        self._names[tgid] = names
        if len(self._names) > 8192:  # processes whose exit we never saw: forget the oldest
            del self._names[next(iter(self._names))]

    def _convert(self, msg) -> ProcEvent | None:
        kind = _KINDS.get(msg.get("event"))
        if kind is None:
            return None
        ts = msg.get("timestamp_ns") or 0
        if kind == "fork":
            pid, tgid = msg["child_pid"], msg["child_tgid"]
            if pid == tgid and msg["parent_tgid"] in self._names:  # a forked copy of its parent
                self._remember(tgid, self._names[msg["parent_tgid"]])
            if kind not in self.kinds or (pid != tgid and not self.threads):
                return None
            return ProcEvent("fork", pid, tgid, ppid=msg["parent_tgid"], timestamp_ns=ts)
        pid, tgid = msg["process_pid"], msg["process_tgid"]
        if pid != tgid and not self.threads:
            return None
        if kind == "exec":
            names = (procfs.comm(tgid), procfs.exe(tgid), procfs.cmdline(tgid))
            self._remember(tgid, names)
            if kind not in self.kinds:
                return None
            return ProcEvent("exec", pid, tgid, *names, ppid=procfs.ppid(tgid), timestamp_ns=ts)
        names = self._names.pop(tgid, None) if pid == tgid else self._names.get(tgid)
        if kind not in self.kinds:
            return None
        comm, exe, cmd = names or (procfs.comm(tgid), "", [])  # a zombie still has its comm
        return ProcEvent("exit", pid, tgid, comm, exe, cmd, ppid=msg.get("parent_tgid") or 0,
                         exit_code=msg.get("exit_code"), timestamp_ns=ts)
