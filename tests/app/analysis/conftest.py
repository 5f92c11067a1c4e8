"""Real processes for the live tests, each in its own process group, always killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

HOG = [sys.executable, "-c", "while True: pass"]


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    procs: list[subprocess.Popen] = []

    def start(argv: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def wait_children(pid: int, n: int, timeout: float = 10.0, cpu_s: float = 0.0) -> list[int]:
    """Descendants of ``pid`` once ``n`` of them run Python and each used ``cpu_s`` of CPU
    (past start-up, which sleeps on file reads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [c for c in psutil.Process(pid).children(recursive=True) if c.cmdline()[:1] ==
                [HOG[0]]]
        if len(kids) >= n and all(sum(c.cpu_times()[:2]) >= cpu_s for c in kids):
            return [c.pid for c in kids]
        time.sleep(0.02)
    raise AssertionError(f"{pid} did not start {n} children in {timeout}s")
