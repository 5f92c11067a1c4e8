"""Tier 1: a cheap picture of the whole machine (load, PSI, busiest processes, workload kind)."""

from __future__ import annotations

import os
import time

import psutil

from schedcp.model import ProcessInfo, SystemSummary

from .classify import classify
from .procfs import psi_cpu_some_avg10

TOP_N = 10


def ncpus() -> int:
    """CPUs this process may use (what a scheduler choice can act on)."""
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def _cpu_seconds() -> dict[int, float]:
    out = {}
    for p in psutil.process_iter(["cpu_times"]):
        t = p.info["cpu_times"]
        if t is not None:
            out[p.pid] = t.user + t.system
    return out


def snapshot(sample_s: float = 0.5) -> list[ProcessInfo]:
    """Every process with its CPU use over ``sample_s`` seconds (% of one CPU)."""
    before = _cpu_seconds()
    t0 = time.monotonic()
    time.sleep(sample_s)
    attrs = ["ppid", "name", "exe", "cmdline", "cpu_times", "num_threads", "nice"]
    procs = []
    for p in psutil.process_iter(attrs, ad_value=None):
        i = p.info
        t = i["cpu_times"]
        if t is None:
            continue
        dt = max(time.monotonic() - t0, 1e-3)
        used = (t.user + t.system) - before.get(p.pid, 0.0)  # a newcomer: all of its time
        procs.append(ProcessInfo(
            pid=p.pid,
            comm=i["name"] or "",
            exe=i["exe"] or "",
            cmdline=list(i["cmdline"] or []),
            ppid=i["ppid"] or 0,
            cpu_percent=round(max(used, 0.0) / dt * 100.0, 1),
            threads=i["num_threads"] or 1,
            nice=i["nice"] or 0,
        ))
    return procs


def summarize(sample_s: float = 0.5) -> SystemSummary:
    """Load, CPU pressure, the busiest processes and the workload kind, in ~``sample_s``."""
    procs = snapshot(sample_s)
    n = ncpus()
    psi = psi_cpu_some_avg10()
    kind, conf, reasons = classify(procs, n, psi=psi)
    top = sorted(procs, key=lambda p: p.cpu_percent, reverse=True)[:TOP_N]
    return SystemSummary(
        ncpus=n,
        load=tuple(round(x, 2) for x in os.getloadavg()),
        psi_cpu_some_avg10=psi,
        top=top,
        kind=kind,
        confidence=conf,
        reasons=reasons,
    )
