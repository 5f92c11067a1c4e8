"""Program starts and exits from the kernel's proc connector, filtered in the kernel.

The tray runs all day, and every program anyone starts (a build starts thousands) is a
proc-connector event. A classic BPF socket filter keeps only EXEC events and the exits of whole
processes (not threads, not forks), so the watcher thread is not even woken for the rest;
the few events left are parsed with ``struct`` (pyroute2's general parser costs ~10x more).
A caller that only cares about some processes' exits (the profile watcher: the profiled apps
running now) narrows the filter to those pids with ``watch_exits``, halving what wakes it
during a build.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

NETLINK_CONNECTOR = 11
CN_IDX_PROC = CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN, PROC_CN_MCAST_IGNORE = 1, 2
PROC_EVENT_EXEC, PROC_EVENT_EXIT = 0x00000002, 0x80000000
NLMSG_DONE = 3
SO_ATTACH_FILTER = 26
NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
EVENT = struct.Struct("=IIQii")  # what, cpu, timestamp_ns, process_pid, process_tgid
EVENT_AT = NLMSGHDR.size + CN_MSG.size  # 36: where proc_event starts in a message


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _swap(v: int) -> int:
    """cBPF absolute loads read big-endian; the connector's fields are host (little) endian."""
    return int.from_bytes(v.to_bytes(4, "little"), "big")


_LD_ABS, _JEQ_K, _JEQ_X, _TAX, _RET = 0x20, 0x15, 0x1D, 0x07, 0x06
MAX_EXIT_PIDS = 200  # jump offsets are 8 bits: more pids than this → all process exits
FILTER = [
    (_LD_ABS, 0, 0, EVENT_AT),                 # A = what
    (_JEQ_K, 5, 0, _swap(PROC_EVENT_EXEC)),    # exec → accept
    (_JEQ_K, 0, 5, _swap(PROC_EVENT_EXIT)),    # neither → drop
    (_LD_ABS, 0, 0, EVENT_AT + 16),            # A = process_pid
    (_TAX, 0, 0, 0),                           # X = A
    (_LD_ABS, 0, 0, EVENT_AT + 20),            # A = process_tgid
    (_JEQ_X, 0, 1, 0),                         # pid == tgid: the process, not a thread
    (_RET, 0, 0, 0xFFFFFFFF),
    (_RET, 0, 0, 0),
]


def exit_filter(pids: Iterable[int]) -> list[tuple[int, int, int, int]]:
    """Every EXEC, and the EXIT of these processes only. A thread's id never equals another
    live process's id, so comparing ``process_pid`` alone also drops thread exits."""
    pids = sorted(set(pids))
    n = len(pids)
    if n > MAX_EXIT_PIDS:
        return FILTER
    accept = 5 + n  # the index of the accepting RET
    return [
        (_LD_ABS, 0, 0, EVENT_AT),                     # A = what
        (_JEQ_K, accept - 2, 0, _swap(PROC_EVENT_EXEC)),
        (_JEQ_K, 0, n + 1, _swap(PROC_EVENT_EXIT)),    # neither → drop
        (_LD_ABS, 0, 0, EVENT_AT + 16),                # A = process_pid
        *((_JEQ_K, n - i, 0, _swap(pid)) for i, pid in enumerate(pids)),
        (_RET, 0, 0, 0),
        (_RET, 0, 0, 0xFFFFFFFF),
    ]


def _attach(s: socket.socket, prog: list[tuple[int, int, int, int]]) -> None:
    """Attach (or atomically replace) the socket's filter."""
    code = (_SockFilter * len(prog))(*(_SockFilter(*i) for i in prog))
    fprog = _SockFprog(len(prog), code)
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                 ctypes.string_at(ctypes.addressof(fprog), ctypes.sizeof(fprog)))


@dataclass(frozen=True)
class ProcChange:
    kind: str  # "exec" | "exit"
    pid: int  # the process (thread group id)
    timestamp_ns: int  # CLOCK_MONOTONIC of the event


class ProcWatch:
    """``open()``, then select on ``fileno()`` and call ``read()``; ``close()`` at the end.
    Opening needs the rights the connector asks for (root, or CAP_NET_ADMIN on older
    kernels); it raises OSError otherwise."""

    def __init__(self, exit_pids: Iterable[int] | None = None) -> None:
        self.sock: socket.socket | None = None
        self.dropped = 0  # times the kernel dropped events (socket buffer full)
        # None: the exits of all processes; else only of these (see watch_exits)
        self.exit_pids: frozenset[int] | None = None if exit_pids is None else frozenset(exit_pids)

    def watch_exits(self, pids: Iterable[int] | None) -> None:
        """Deliver the exits of only these processes from now on (None: of all). The kernel
        filter is replaced at once; an exit that happened before the call may have been
        dropped, so a caller adding a pid should check afterwards that it still runs."""
        self.exit_pids = None if pids is None else frozenset(pids)
        s = self.sock  # closed meanwhile by another thread: OSError (EBADF)
        if s is not None:
            _attach(s, FILTER if self.exit_pids is None else exit_filter(self.exit_pids))

    def open(self) -> None:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            _attach(s, FILTER if self.exit_pids is None else exit_filter(self.exit_pids))
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((0, CN_IDX_PROC))
            self._control(s, PROC_CN_MCAST_LISTEN)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self.sock = s

    @staticmethod
    def _control(s: socket.socket, op: int) -> None:
        body = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack("=I", op)
        s.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), NLMSG_DONE, 0, 0, os.getpid()) + body)

    def fileno(self) -> int:
        if self.sock is None:
            raise RuntimeError("ProcWatch is not open")
        return self.sock.fileno()

    def read(self) -> list[ProcChange]:
        """Every event queued now (never blocks)."""
        out: list[ProcChange] = []
        while self.sock is not None:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.dropped += 1
                    continue
                raise
            off = 0
            while off + EVENT_AT + EVENT.size <= len(data):
                length = NLMSGHDR.unpack_from(data, off)[0]
                what, _cpu, ts, pid, tgid = EVENT.unpack_from(data, off + EVENT_AT)
                if what == PROC_EVENT_EXEC:
                    out.append(ProcChange("exec", tgid, ts))
                elif what == PROC_EVENT_EXIT and pid == tgid:
                    out.append(ProcChange("exit", tgid, ts))
                off += max(length + 3 & ~3, NLMSGHDR.size)
        return out

    def close(self) -> None:
        if self.sock is None:
            return
        with contextlib.suppress(OSError):
            self.sock.setblocking(True)
            self._control(self.sock, PROC_CN_MCAST_IGNORE)
        self.sock.close()
        self.sock = None

    def __enter__(self) -> ProcWatch:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
