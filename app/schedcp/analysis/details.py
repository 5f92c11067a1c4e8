"""Tier 2: details on request. Each function returns data, or None when the source is not
available here; ``REASONS[name]`` then says why (for the agent and for the report)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil

from . import procfs

log = logging.getLogger(__name__)
REASONS: dict[str, str] = {}  # function name -> why it last returned None


def _unavailable(name: str, why: str) -> None:
    REASONS[name] = why
    log.debug("%s unavailable: %s", name, why)


def process_tree(pid: int) -> dict[str, Any] | None:
    """``{pid, comm, exe, threads, cpu_s, children: [...]}`` for ``pid`` and its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error as e:
        _unavailable("process_tree", f"pid {pid}: {e}")
        return None
    nodes: dict[int, dict[str, Any]] = {}
    for p in procs:
        try:
            with p.oneshot():
                t = p.cpu_times()
                nodes[p.pid] = {
                    "pid": p.pid, "ppid": p.ppid(), "comm": p.name(),
                    "exe": procfs.exe(p.pid), "threads": p.num_threads(),
                    "cpu_s": round(t.user + t.system, 3), "children": [],
                }
        except psutil.Error:  # exited while we walked the tree
            continue
    if pid not in nodes:
        _unavailable("process_tree", f"pid {pid} exited")
        return None
    for node in nodes.values():
        parent = nodes.get(node["ppid"])
        if parent is not None and node["pid"] != pid:
            parent["children"].append(node)
    return nodes[pid]


def schedstats(pids: list[int]) -> dict[int, tuple[int, int, int]]:
    """pid -> (run_ns, runqueue wait_ns, timeslices) summed over the process's live threads.

    Gone processes are left out. Exited threads' time is lost (the kernel folds it nowhere
    readable), so compare deltas over short windows.
    """
    out = {}
    for pid in pids:
        per_thread = procfs.thread_schedstats(pid)
        if per_thread:
            run = sum(s[0] for s in per_thread.values())
            wait = sum(s[1] for s in per_thread.values())
            slices = sum(s[2] for s in per_thread.values())
            out[pid] = (run, wait, slices)
    return out


_TASKSTATS_KEYS = (
    "cpu_count", "cpu_delay_total", "blkio_count", "blkio_delay_total", "swapin_count",
    "swapin_delay_total", "freepages_count", "freepages_delay_total", "thrashing_count",
    "thrashing_delay_total", "compact_count", "compact_delay_total", "wpcopy_count",
    "wpcopy_delay_total", "irq_count", "irq_delay_total", "cpu_run_real_total",
    "cpu_run_virtual_total", "nvcsw", "nivcsw",
)


def taskstats(pid: int) -> dict[str, int] | None:
    """Delay accounting of ``pid`` (ns totals and counts) from the taskstats genetlink family.

    Root only (CAP_NET_ADMIN); block-I/O and swap delays stay 0 unless the kernel runs with
    ``delayacct`` (sysctl kernel.task_delayacct=1).
    """
    try:
        from pyroute2 import TaskStats
    except ImportError as e:  # pragma: no cover - pyroute2 is a dependency
        _unavailable("taskstats", f"pyroute2 missing: {e}")
        return None
    ts = TaskStats()
    try:
        ts.bind()
        reply = ts.get_pid_stat(pid)
    except Exception as e:  # netlink errors: EPERM without root, ESRCH when gone
        _unavailable("taskstats", f"pid {pid}: {type(e).__name__}: {e}")
        return None
    finally:
        ts.close()
    for msg in reply:
        for name, value in msg.get("attrs", []):
            if name != "TASKSTATS_TYPE_AGGR_PID":
                continue
            for inner, stats in value.get("attrs", []):
                if inner == "TASKSTATS_TYPE_STATS":
                    out = {k: int(stats[k]) for k in _TASKSTATS_KEYS if k in stats}
                    delayacct = procfs.read_text("/proc/sys/kernel/task_delayacct").strip()
                    out["delayacct"] = int(delayacct) if delayacct.isdigit() else -1
                    return out
    _unavailable("taskstats", f"pid {pid}: no stats in the reply")
    return None


_PERF_EVENTS = "task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions"


def perf_stat(pid: int, seconds: float) -> dict[str, float] | None:
    """``perf stat`` counters of ``pid`` over ``seconds``; hardware counters a VM or the
    paranoia level hides are left out. None when perf is absent or cannot attach."""
    perf = shutil.which("perf")
    if perf is None:
        _unavailable("perf_stat", "perf is not installed")
        return None
    cmd = [perf, "stat", "-x", ",", "-e", _PERF_EVENTS, "-p", str(pid), "--",
           "sleep", f"{seconds:g}"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 10)
    except (OSError, subprocess.TimeoutExpired) as e:
        _unavailable("perf_stat", f"perf failed: {e}")
        return None
    out: dict[str, float] = {}
    for line in r.stderr.splitlines():
        cols = line.split(",")
        if len(cols) < 3:
            continue
        if cols[0] == "<not counted>":  # the task never ran in the window
            out[cols[2]] = 0.0
            continue
        try:
            out[cols[2]] = float(cols[0])
        except ValueError:  # "<not supported>": no hardware counters here (VM, paranoia)
            continue
    if not out:
        why = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        _unavailable("perf_stat", f"perf stat gave no counters: {why}")
        return None
    return out


def topology() -> dict[str, Any]:
    """``{cpus, cores, smt, llc_groups, numa}`` from sysfs: what placement policies act on."""
    base = Path("/sys/devices/system/cpu")
    cpus = procfs.cpu_list(procfs.read_text(base / "online")) or list(range(psutil.cpu_count()))
    cores: set[tuple[str, str]] = set()
    llc: dict[str, list[int]] = {}
    smt = False
    for cpu in cpus:
        d = base / f"cpu{cpu}"
        pkg = procfs.read_text(d / "topology/physical_package_id").strip()
        core = procfs.read_text(d / "topology/core_id").strip()
        cores.add((pkg, core))
        siblings = procfs.cpu_list(procfs.read_text(d / "topology/thread_siblings_list"))
        smt = smt or len(siblings) > 1
        levels = sorted(
            (int(procfs.read_text(c / "level").strip() or 0), c)
            for c in (d / "cache").glob("index*")
            if procfs.read_text(c / "type").strip() in ("Unified", "Data")
        )
        if levels:
            shared = procfs.read_text(levels[-1][1] / "shared_cpu_list").strip()
            llc.setdefault(shared, procfs.cpu_list(shared))
    numa = {}
    for node in sorted(Path("/sys/devices/system/node").glob("node[0-9]*")):
        numa[int(re.sub(r"\D", "", node.name))] = procfs.cpu_list(
            procfs.read_text(node / "cpulist"))
    return {
        "cpus": len(cpus),
        "cores": len(cores) or len(cpus),
        "smt": smt,
        "llc_groups": sorted(llc.values()) or [cpus],
        "numa": numa or {0: cpus},
    }
