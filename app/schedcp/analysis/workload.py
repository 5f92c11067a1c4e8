"""Tier 2 condensed: one target's tree, numbers and a sentence the policy search can use."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter, defaultdict

import psutil

from schedcp.model import ProcessInfo, WorkloadProfile
from schedcp.vocabulary import GOALS

from . import procfs
from .classify import base_name, busy_pids, classify, is_compiler, is_launcher, subtree
from .events import ExecWatcher
from .feedback import task_stats
from .summary import ncpus as _ncpus

GOAL_ALIASES = {"latency": "responsiveness", "interactive": "responsiveness"}


def normalize_goal(goal: str) -> str:
    goal = GOAL_ALIASES.get(goal, goal)
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; one of {', '.join(GOALS)}")
    return goal


def _info(pid: int, cpu_percent: float, threads: int) -> ProcessInfo:
    return ProcessInfo(pid=pid, comm=procfs.comm(pid), exe=procfs.exe(pid),
                       cmdline=procfs.cmdline(pid), ppid=procfs.ppid(pid),
                       cpu_percent=round(cpu_percent, 1), threads=max(threads, 1))


def _ancestors(pid: int) -> list[int]:
    out, seen = [], {pid}
    ppid = procfs.ppid(pid)
    while ppid > 1 and ppid not in seen:
        out.append(ppid)
        seen.add(ppid)
        ppid = procfs.ppid(ppid)
    return out


def _ctxt(pids: list[int]) -> tuple[int, int]:
    vol = invol = 0
    for pid in pids:
        v, i = procfs.ctxt_switches(pid)
        vol, invol = vol + v, invol + i
    return vol, invol


def _watch(root: int, window_s: float) -> tuple[int, int] | None:
    """(forks, execs) inside ``root``'s tree during the window, from the proc connector."""
    try:
        watcher = ExecWatcher(kinds=("fork", "exec"))
        watcher.open()
    except Exception:  # no connector (odd kernels, seccomp): rates stay unknown
        time.sleep(window_s)
        return None
    tree = {root, *(c.pid for c in _children(root))}
    forks = execs = 0
    try:
        for ev in watcher.events(timeout=window_s):
            if ev.kind == "fork" and ev.ppid in tree:
                tree.add(ev.tgid)
                forks += 1
            elif ev.kind == "exec" and ev.tgid in tree:
                execs += 1
    finally:
        watcher.close()
    return forks, execs


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def profile(pid: int, goal: str, window_s: float = 1.0, windowed: bool = False,
            game: bool = False) -> WorkloadProfile:
    """Watch ``pid`` and its descendants for ``window_s``: kind, numbers and a description.
    ``windowed``: the app has a window in front of a person (the tray knows), so it is not
    batch work even when it keeps CPUs busy: a game's frame loop looks like a CPU hog.
    ``game``: its .desktop entry (or Steam/Proton) says it is a game.

    Raises ProcessLookupError when ``pid`` does not exist.
    """
    goal = normalize_goal(goal)
    if not psutil.pid_exists(pid):
        raise ProcessLookupError(pid)
    ncpus = _ncpus()
    before = task_stats([pid])
    ctx0 = _ctxt(sorted({p for p, _ in before}))
    t0 = time.monotonic()
    rates = _watch(pid, window_s)
    after = task_stats([pid])
    dt = max(time.monotonic() - t0, 1e-3)
    if not any(p == pid for p, _ in after):  # the root exited inside the window
        raise ProcessLookupError(pid)
    pids = sorted({p for p, _ in after}, key=lambda p: (p != pid, p))
    ctx1 = _ctxt(pids)

    run_d: dict[int, int] = defaultdict(int)
    wait_d: dict[int, int] = defaultdict(int)
    wait_total = run_total = 0
    cum_run: dict[int, int] = defaultdict(int)
    nthreads: Counter[int] = Counter()
    for task, (r, w, _) in after.items():
        r0, w0, _ = before.get(task, (0, 0, 0))
        run_d[task[0]] += r - r0
        wait_d[task[0]] += w - w0
        run_total += r - r0
        wait_total += w - w0
        cum_run[task[0]] += r
        nthreads[task[0]] += 1
    infos = [_info(p, run_d[p] / 1e9 / dt * 100, nthreads[p]) for p in pids]
    infos += [_info(a, 0.0, 1) for a in _ancestors(pid)]  # for Steam/make ancestry only
    runnable = {p: (run_d[p] + wait_d[p]) / 1e9 / dt for p in pids}
    kind, conf, _ = classify(infos, ncpus, root=pid, runnable=runnable)
    if windowed and kind in ("batch", "idle", "interactive"):
        kind = "game" if game else "interactive"
    tree = subtree(infos, pid)
    busy_set, _ = busy_pids(tree, ncpus, runnable)
    busy = [p for p in tree if p.pid in busy_set]
    exes = Counter(base_name(p) for p in busy)
    top_exe, top_n = exes.most_common(1)[0] if exes else ("", 0)
    root = tree[0]
    exe = root.exe or root.comm
    if is_launcher(root) and busy:  # `sh -c ...`: the workers are the workload
        exe = next(p.exe or p.comm for p in busy if base_name(p) == top_exe)
    peers = [cum_run[p.pid] / 1e9 for p in busy if base_name(p) == top_exe]
    cv = statistics.pstdev(peers) / statistics.mean(peers) if len(peers) > 1 and sum(peers) else 0.0
    dvol, dinvol = ctx1[0] - ctx0[0], ctx1[1] - ctx0[1]
    features = {
        "ncpus": float(ncpus),
        "window_s": round(dt, 3),
        "cpu_util": round(run_total / 1e9 / dt / ncpus, 3),
        "cpus_used": round(run_total / 1e9 / dt, 3),
        "runnable": round((run_total + wait_total) / 1e9 / dt, 3),
        "wait_frac": round(wait_total / (run_total + wait_total), 3) if run_total else 0.0,
        "runqueue_wait_ms_per_s": round(wait_total / 1e6 / dt, 3),
        "nprocs": float(len(tree)),
        "nthreads": float(sum(nthreads.values())),
        "children": float(sum(1 for p in tree if p.ppid == pid)),
        "busy_procs": float(len(busy)),
        "same_exe_frac": round(top_n / len(busy), 3) if busy else 0.0,
        "cpu_time_cv": round(cv, 3),
        "preempt_frac": round(dinvol / (dvol + dinvol), 3) if dvol + dinvol > 0 else 0.0,
        "confidence": conf,
        "windowed": 1.0 if windowed else 0.0,
    }
    if rates is not None:
        features["spawn_rate"] = round(rates[0] / dt, 2)
        features["exec_rate"] = round(rates[1] / dt, 2)
    wp = WorkloadProfile(kind=kind, goal=goal, root_pid=pid, pids=pids, exe=exe,
                         nthreads=int(features["nthreads"]), features=features)
    wp.description = describe(wp, tree, top_exe, top_n)
    try:  # identity: the root's command line, its script resolved from its own cwd
        from .identity import resolve_argv

        wp.cmdline = resolve_argv(procfs.cmdline(pid), os.readlink(f"/proc/{pid}/cwd"))
    except OSError:  # gone, or not ours to read: the key falls back to the executable
        pass
    return wp


def describe(wp: WorkloadProfile, tree: list[ProcessInfo], top_exe: str, top_n: int) -> str:
    """One sentence for retrieval: kind, shape and numbers; names only as basenames."""
    f = wp.features
    n = int(f["ncpus"])
    name = wp.exe.rsplit("/", 1)[-1]
    load = (f"{f['cpus_used']:.1f} of {n} CPUs busy, "
            f"runqueue wait {f['wait_frac']:.0%} of runnable time")
    if wp.kind == "batch":
        if top_n > 1:
            shape = f"{top_n} CPU-bound processes of one executable ({top_exe}) on {n} CPUs"
        else:
            shape = f"{int(f['busy_procs'])} CPU-bound process(es) with {wp.nthreads} threads"
        tail = ("long-tailed runtimes" if f["cpu_time_cv"] > 0.5
                else "uneven runtimes" if f["cpu_time_cv"] > 0.2 else "even runtimes")
        body = f"{shape}, {tail}, {load}"
    elif wp.kind == "build":
        compilers = sum(1 for p in tree if is_compiler(p))
        spawn = f", {f['spawn_rate']:.0f} process spawns/s" if "spawn_rate" in f else ""
        body = f"{name} build with {compilers} compiler processes{spawn}, {load}"
    elif wp.kind == "game" and f.get("windowed"):
        body = (f"{name}, a game with {wp.nthreads} threads wanting {f['runnable']:.1f} CPUs, "
                f"latency-sensitive frame loop, {load}")
    elif wp.kind == "game":
        body = (f"{name} under Wine/Proton with {wp.nthreads} threads, "
                f"latency-sensitive frame loop, {load}")
    elif wp.kind == "media":
        body = f"{name} decoding and playing, steady periodic deadlines, {load}"
    elif wp.kind == "interactive" and f.get("windowed") and f["runnable"] >= 0.5:
        # runnable, not CPU use: on a busy machine its threads wait instead of running
        body = (f"{name}, a windowed app with {wp.nthreads} threads wanting "
                f"{f['runnable']:.1f} CPUs (a frame loop, e.g. a game), {load}")
    elif wp.kind == "interactive":
        body = (f"{name}, {wp.nthreads} threads, mostly sleeping and waking on input "
                f"(preempted {f['preempt_frac']:.0%} of switches), {load}")
    else:
        body = f"{name} using almost no CPU, {load}"
    return f"{wp.kind} workload: {body}, goal {wp.goal}"
