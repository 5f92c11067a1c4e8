"""Shared fixtures. VM tests boot the real sched_ext guest; they fail (never skip) without it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from schedcp_helper.vm import GuestResult, Kit, KitError, find_kit, kit_config, run
from tests.dbus_stack import Stack, start_stack


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
    import time

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
