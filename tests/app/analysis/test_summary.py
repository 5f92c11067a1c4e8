"""Tier-1 summary of the live system."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from schedcp.analysis import summarize
from schedcp.model import KINDS, ProcessInfo

from .conftest import HOG


def test_summary_of_the_live_system_is_sane(spawn):
    hog = spawn(HOG)
    time.sleep(0.1)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    s = summarize(0.3)
    r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - t0
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    print(f"summarize(0.3): {wall:.3f} s wall, {cpu * 1000:.0f} ms CPU, "
          f"{len(os.listdir('/proc'))} /proc entries; kind={s.kind} {s.confidence} {s.reasons}")
    assert s.ncpus == len(os.sched_getaffinity(0))
    assert len(s.load) == 3 and all(x >= 0 for x in s.load)
    if Path("/proc/pressure/cpu").exists():
        assert s.psi_cpu_some_avg10 is not None and 0 <= s.psi_cpu_some_avg10 <= 100
    else:
        assert s.psi_cpu_some_avg10 is None
    assert 0 < len(s.top) <= 10 and all(isinstance(p, ProcessInfo) for p in s.top)
    assert [p.cpu_percent for p in s.top] == sorted((p.cpu_percent for p in s.top), reverse=True)
    mine = [p for p in s.top if p.pid == hog.pid]
    assert mine and mine[0].cpu_percent > 20 and mine[0].cmdline == HOG
    assert s.kind in KINDS and 0 <= s.confidence <= 1 and s.reasons
    assert wall < 1.0 and cpu < 0.3
    assert s.to_dict()["top"][0]["pid"] == s.top[0].pid
