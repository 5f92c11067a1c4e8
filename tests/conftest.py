"""Shared fixtures. VM tests boot the real sched_ext guest; they fail (never skip) without it.

Nothing a test starts may outlive it: pytest becomes a child subreaper (orphans come back to it
instead of init), every test's new descendants are stopped after it, and a guest or a helper left
behind fails the test that left it (anything else is reported in the summary).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from schedcp_common.vm import GuestResult, Kit, KitError, find_kit, kit_config, run
from tests.dbus_stack import Stack, owned_pids, start_stack


def qemu_processes(tag: str = "schedcp-", parent: int | None = None) -> list[int]:
    """PIDs of qemu guests started by SchedCP (their -name starts with ``tag``), only the
    children of ``parent`` if given (other developers' or tests' guests may be running)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and any(
            a.startswith(tag.encode()) for a in argv
        ):
            if parent is not None and _ppid(entry) != parent:
                continue
            pids.append(int(entry.name))
    return pids


def _ppid(entry: Path) -> int | None:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


# -- processes: nothing a test starts outlives it ------------------------------------------------
PR_SET_CHILD_SUBREAPER = 36
# what a test must never leave behind: a micro-VM, or our root helper / loader
MUST_STOP = (b"qemu-system", b"schedcp_helper", b"schedcp-helper")


class LeftoverProcessWarning(UserWarning):
    """A test left a process running (it was stopped after the test)."""


def pytest_configure(config: pytest.Config) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _descendants() -> dict[int, psutil.Process]:
    try:
        return {p.pid: p for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return {}


def _cmdline(p: psutil.Process) -> bytes:
    try:
        return " ".join(p.cmdline()).encode() or p.name().encode()
    except psutil.Error:
        return b"?"


def _has_ancestor(p: psutil.Process, pids: set[int]) -> bool:
    try:
        return any(a.pid in pids for a in p.parents())
    except psutil.Error:
        return False


def _reap_zombies(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Orphans handed to us by the subreaper are ours to reap; return the live ones."""
    live = []
    for p in procs:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                if p.ppid() == os.getpid():
                    os.waitpid(p.pid, os.WNOHANG)
                continue
        except (psutil.Error, ChildProcessError):
            continue
        live.append(p)
    return live


def group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in process group ``pgid``. Killed members
    come back to pytest (a subreaper) as zombies instead of to init: reap those, they are gone."""
    left = False
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) != pgid:
                continue
        except OSError:
            continue
        if _reap_zombies([p]):
            left = True
    return left


def stop_processes(procs: list[psutil.Process], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL what is still there after ``grace`` seconds; reap our zombies."""
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace)
    _reap_zombies(procs)


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest):
    """Session/module fixtures are set up before this one (higher scopes come first), so their
    processes are in ``before``; a function fixture's are stopped by its own teardown first."""
    before = set(_descendants())
    yield
    owned = owned_pids()  # a session stack's restarted helper is the stack's, not a leak
    left = _reap_zombies([p for pid, p in _descendants().items()
                          if pid not in before and pid not in owned
                          and not _has_ancestor(p, owned)])
    if not left:
        return
    names = [(p.pid, _cmdline(p)) for p in left]
    stop_processes(left)
    text = "; ".join(f"{pid} {cmd.decode(errors='replace')[:120]}" for pid, cmd in names)
    if any(tag in cmd for _, cmd in names for tag in MUST_STOP):
        pytest.fail(f"{request.node.nodeid} left a guest or a helper running (now stopped): "
                    f"{text}", pytrace=False)
    warnings.warn(LeftoverProcessWarning(f"{request.node.nodeid} left {text}"), stacklevel=1)


@pytest.fixture(scope="session", autouse=True)
def nothing_outlives_the_session():
    yield
    stop_processes(_reap_zombies(list(_descendants().values())))


@dataclass
class Spawned:
    """Processes a test started in sessions of their own; their whole groups are stopped at
    teardown, pass or fail."""

    procs: list[subprocess.Popen] = field(default_factory=list)

    def __call__(self, argv: list[str], *, foreground: bool = False,
                 **kw) -> subprocess.Popen:
        """``foreground``: SIGINT at its default, as for a command typed at a terminal (a job
        started with ``&`` by a non-interactive shell, as CI may start the suite, inherits
        SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
        pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if foreground else None
        p = subprocess.Popen(argv, start_new_session=True, preexec_fn=pre, **kw)
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if p.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)


@pytest.fixture
def spawn() -> Spawned:
    s = Spawned()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def vm_kit() -> Kit:
    try:
        return find_kit()
    except KitError as e:
        pytest.fail(f"VM tests need the sched_ext guest kit and it cannot be had: {e}",
                    pytrace=False)


@dataclass
class GuestRun:
    result: GuestResult
    output: str
    out_dir: Path
    chunks: list[tuple[float, bytes]] = field(default_factory=list)


@pytest.fixture
def guest(vm_kit: Kit, tmp_path: Path) -> Callable[..., GuestRun]:
    """Run a shell script in the guest; its cwd is a fresh host folder returned as ``out_dir``."""

    def _run(script: str, timeout: float = 120, **kw) -> GuestRun:
        out = tmp_path / f"out{len(os.listdir(tmp_path))}"
        out.mkdir()
        chunks: list[tuple[float, bytes]] = []
        cfg = kit_config(vm_kit, out_dir=out, timeout=timeout, **kw)
        result = run(script, cfg, lambda b: chunks.append((time.monotonic(), b)))
        text = b"".join(c for _, c in chunks).decode(errors="replace")
        return GuestRun(result, text, out, chunks)

    return _run


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The real private system bus + polkitd + test users + the helper, once per session."""
    try:
        s = start_stack()
    except RuntimeError as e:
        pytest.fail(f"cannot start the D-Bus test stack: {e}", pytrace=False)
    yield s
    s.close()


@pytest.fixture(scope="session")
def built_debs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """schedcp-helper and schedcp .debs, built once per session (or $SCHEDCP_DEB_DIR's) for the
    package test and the system test."""
    from tests.packaging.debroot import RootError, build_debs

    if os.geteuid() != 0:
        pytest.fail("building and installing the packages needs root", pytrace=False)
    try:
        debs = build_debs(tmp_path_factory.mktemp("debs"))
    except RootError as e:
        pytest.fail(str(e), pytrace=False)
    assert [d.name.split("_")[0] for d in debs] == ["schedcp-helper", "schedcp"], debs
    return debs
