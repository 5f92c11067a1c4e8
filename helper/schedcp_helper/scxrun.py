"""Run a packaged ``scx_*`` scheduler as a child process of the helper, and stop it again.

The helper is root, so what it executes and with which arguments is locked down:

- only ``scx_<name>`` found in fixed system directories (plus directories a caller such as a
  test passes explicitly), where the file and every directory above it are root-owned and not
  group/world-writable: only root could have put it there, or can swap it after the check;
- only arguments declared as tunables of the policy (their ``flag``), values validated by
  ``Tunable.validate``; nothing else reaches the command line;
- a clean environment (no LD_PRELOAD/LD_LIBRARY_PATH inherited from whoever started us).

The child dies with the helper (PR_SET_PDEATHSIG SIGKILL): a packaged scheduler must not outlive
the process that watches it. SIGKILL skips the binary's clean exit, but the kernel unregisters
the struct_ops when the process's link goes away and falls back to its default scheduler, which
is the point. The kernel sends the signal when the *thread* that forked the child exits, so
children are forked from one long-lived spawner thread, never from a short-lived caller (e.g. a
canary watcher that reverts and then returns).

Success means the kernel says so: /sys/kernel/sched_ext enabled, with a new enable_seq.
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from schedcp_common import trusted
from schedcp_common.policy import Policy, PolicyError

from .scxstate import ScxState, kernel_events, last_seq, read_state

CHILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
OUTPUT_LIMIT = 256 * 1024
PR_SET_PDEATHSIG = 1


class ScxRunError(RuntimeError):
    """The scheduler could not be started or misbehaved; ``output`` holds what it printed."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


class UntrustedBinary(ScxRunError):
    """The binary is not where only root can place it."""


def check_trusted(path: Path) -> None:
    """Refuse unless ``path`` is a root-owned regular file only root can modify or replace."""
    try:
        trusted.check_trusted(path)
    except trusted.NotTrusted as e:
        raise UntrustedBinary(str(e)) from None


def find_binary(name: str, extra_dirs: Iterable[Path] = ()) -> Path:
    """The trusted path of ``scx_<name>``: the fixed system dirs first, then ``extra_dirs``."""
    try:
        return trusted.find_binary(name, extra_dirs)
    except trusted.NotTrusted as e:
        raise UntrustedBinary(str(e)) from None
    except trusted.NotInstalled as e:
        raise ScxRunError(str(e)) from None


def build_args(policy: Policy, values: Mapping[str, object]) -> list[str]:
    """Command-line arguments for ``values``: declared tunables only, each validated."""
    if policy.kind != "scx":
        raise PolicyError(f"{policy.name} is not a packaged scx scheduler")
    args: list[str] = []
    for name, value in values.items():
        tunable = policy.tunables.get(name)
        if tunable is None or not tunable.flag:
            raise PolicyError(f"{policy.name}: {name!r} is not a declared tunable; known: "
                              f"{', '.join(sorted(policy.tunables)) or 'none'}")
        value = tunable.validate(value)
        if tunable.type == "bool":
            if value:
                args.append(tunable.flag)
        else:
            args += [tunable.flag, str(value)]
    return args


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before any fork


def _die_with_parent(parent: int) -> None:
    """In the child before exec: SIGKILL when the forking thread dies; exit if it already has."""
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(126)
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(126)


class _Spawner:
    """One daemon thread, alive as long as the process, that runs every Popen of a child."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="scx-spawner",
                                                daemon=True)
                self._thread.start()
        done: queue.SimpleQueue = queue.SimpleQueue()
        self._jobs.put((argv, kw, done))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def _serve(self) -> None:
        while True:
            argv, kw, done = self._jobs.get()
            try:
                hook = functools.partial(_die_with_parent, os.getpid())
                done.put((True, subprocess.Popen(argv, preexec_fn=hook, **kw)))
            except BaseException as e:  # handed back to the caller
                done.put((False, e))


_spawner = _Spawner()


class _Output:
    """The child's merged stdout/stderr, keeping the last ``limit`` bytes."""

    def __init__(self, stream, limit: int):
        self._buf = bytearray()
        self._limit = limit
        self.dropped = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        while chunk := stream.read1(65536):
            with self._lock:
                self._buf += chunk
                excess = len(self._buf) - self._limit
                if excess > 0:
                    del self._buf[:excess]
                    self.dropped += excess
        stream.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        with self._lock:
            head = f"[... {self.dropped} bytes dropped ...]\n" if self.dropped else ""
            return head + self._buf.decode(errors="replace")


class ScxProcess:
    """One running scx_* child: start() waits for sched_ext to enable it, stop() ends it."""

    def __init__(self, binary: Path, args: list[str], output_limit: int = OUTPUT_LIMIT):
        self.binary = binary
        self.args = args
        self.output_limit = output_limit
        self.proc: subprocess.Popen | None = None
        self.ops = ""
        self.returncode: int | None = None
        self._out: _Output | None = None
        self._kmsg_seq: int | None = None

    @classmethod
    def for_policy(cls, policy: Policy, values: Mapping[str, object] | None = None,
                   trusted_dirs: Iterable[Path] = (), **kw) -> ScxProcess:
        """Resolve the policy's binary in trusted dirs and its validated arguments."""
        args = build_args(policy, values or {})
        return cls(find_binary(policy.binary, trusted_dirs), args, **kw)

    @property
    def output(self) -> str:
        return self._out.text() if self._out else ""

    def start(self, timeout: float = 30.0, poll: float = 0.05) -> ScxState:
        """Launch and wait until sched_ext reports a newly enabled scheduler, or fail."""
        before = read_state()
        if not before.supported:
            raise ScxRunError("this kernel lacks sched_ext (/sys/kernel/sched_ext is missing)")
        if before.state not in ("disabled", ""):
            raise ScxRunError(f"sched_ext is busy: {before.state} with {before.ops!r}")
        check_trusted(self.binary)  # again, right before exec
        self._kmsg_seq = last_seq()
        self.proc = _spawner.popen(
            [str(self.binary), *self.args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=CHILD_ENV, cwd="/", start_new_session=True,
        )
        self._out = _Output(self.proc.stdout, self.output_limit)
        deadline = time.monotonic() + timeout
        while True:
            state = read_state()
            seq_moved = state.enable_seq is None or state.enable_seq > (before.enable_seq or 0)
            new = state.enabled and seq_moved  # kernels without enable_seq: enabled is enough
            if new and self.proc.poll() is None:
                self.ops = state.ops
                return state
            if self.proc.poll() is not None:
                self._out.join(2)
                raise ScxRunError(
                    f"{self.binary.name} exited with {self.proc.returncode} before sched_ext "
                    f"enabled it{self._why()}:\n{self.output}", self.output)
            if time.monotonic() > deadline:
                self.stop()
                raise ScxRunError(f"{self.binary.name} was not enabled within {timeout:g} s"
                                  f"{self._why()}:\n{self.output}", self.output)
            time.sleep(poll)

    def stop(self, grace: float = 5.0, settle: float = 10.0) -> int:
        """SIGINT (scx_* exit cleanly on it), SIGKILL after ``grace``; wait for disabled."""
        if self.proc is None:
            raise ScxRunError("not started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        if self._out:
            self._out.join(2)
        deadline = time.monotonic() + settle  # the kernel disables asynchronously
        while read_state().state not in ("disabled", "") and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.returncode

    def _why(self) -> str:
        """The kernel's reason, if it logged one since start (e.g. ops.init() failed)."""
        for ev in reversed(kernel_events(self._kmsg_seq)):
            if ev.kind == "disabled":
                return f" ({ev.explanation})"
        return ""

    def __enter__(self) -> ScxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
