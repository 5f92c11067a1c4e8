"""The canary and the guard: one thread per deployment that trips the breaker.

During the canary window it watches for ejection by sched_ext, a target task's runqueue wait
growing past its baseline, and reported regressions; after it (passed or kept) it keeps
guarding against a late ejection. It works on its Deployer's state under the Deployer's lock
and reverts through ``Deployer._trip``, which decides under that lock whether a trip still
applies (a racing keep or deploy wins cleanly).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

from .coexist import identify
from .records import CanaryParams, Deployment
from .scxstate import kernel_events, read_state
from .states import State


class Guarded(Protocol):
    """The Deployer as its watcher sees it (its state, under its lock)."""

    _lock: threading.RLock
    _paused: bool
    _reports: list[tuple[float, float, bool]]
    _eject_error: str
    current: Deployment | None
    running: object

    def listener(self, kind: str, dep: Deployment) -> None: ...

    def _trip(self, dep: Deployment, reason: str, even_kept: bool = False) -> None: ...

    def _save(self) -> None: ...

GUARD_POLL_S = 1.0  # after the canary: one sysfs read a second
SETTLE_S = 2.0  # how long an ejection may stay "disabling" before we stop waiting for its reason


def read_schedstat(pid: int) -> tuple[int, int] | None:
    """(on-CPU ns, runqueue-wait ns) of a process's main thread, None if it is gone."""
    try:
        run, wait, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


def _share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float:
    if before is None or after is None:
        return 0.0
    run, wait = after[0] - before[0], after[1] - before[1]
    return wait / (run + wait) if run + wait > 0 else 0.0


def wait_baseline(canary: CanaryParams) -> dict[int, float]:
    """Runqueue-wait share of each target over a short window under the current scheduler."""
    if not canary.target_pids:
        return {}
    before = {p: read_schedstat(p) for p in canary.target_pids}
    time.sleep(min(1.0, canary.window_s / 4))
    return {p: _share(before[p], read_schedstat(p)) for p in canary.target_pids
            if before[p] is not None}


def reported_regression(reports: list[tuple[float, float, bool]],
                        canary: CanaryParams) -> str | None:
    """The breaker's verdict on the caller's reports (value, baseline, higher is better): all
    of the last ``strikes`` worse by ``regression_ratio``."""
    reports = reports[-canary.strikes:]
    if len(reports) < canary.strikes:
        return None
    bad = 0
    for value, base, higher in reports:
        ratio = (base / value if value else float("inf")) if higher else (
            value / base if base else float("inf"))
        bad += ratio >= canary.regression_ratio
    if bad == len(reports):
        v, b, _ = reports[-1]
        return f"reported metric regressed: {v:g} vs baseline {b:g}"
    return None


class Watch:
    """One deployment's watcher: ``thread`` runs it, ``stop`` ends it."""

    def __init__(self, d: Guarded, dep: Deployment, canary: CanaryParams,
                 baseline: dict[int, float], seq: int | None):
        self.d, self.dep, self.canary, self.baseline, self.seq = d, dep, canary, baseline, seq
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"canary-{dep.id}", daemon=True)

    def run(self) -> None:
        d, dep, canary, baseline, stop = self.d, self.dep, self.canary, self.baseline, self.stop
        deadline = time.monotonic() + canary.window_s
        last = {p: read_schedstat(p) for p in baseline}
        strikes = 0
        while not stop.wait(canary.poll_s):
            reason = self._ejected()
            if reason is not None:  # gone from the kernel: kept or not, bring back the previous
                if dep.state in (State.KEPT, State.PASSED):  # kept before this poll saw it: say so
                    reason = f"after the canary, {reason}"
                d._trip(dep, reason, even_kept=True)
                return
            if dep.state == State.KEPT:  # the user decided: only ejection matters from now on
                self._guard()
                return
            if baseline:
                now = {p: read_schedstat(p) for p in baseline}
                worse = [p for p in baseline if last.get(p) and now.get(p) and _share(
                    last[p], now[p]) > max(canary.wait_floor, baseline[p] * canary.max_wait_ratio)]
                last = now
                strikes = strikes + 1 if worse else 0
                if strikes >= canary.strikes:
                    reason = (f"runqueue wait of pid {worse[0]} rose past "
                              f"{canary.max_wait_ratio:g}x its baseline")
            if reason is None:
                with d._lock:
                    reports = list(d._reports)
                reason = reported_regression(reports, canary)
            if reason is not None:
                d._trip(dep, reason)
                return
            if time.monotonic() >= deadline:
                with d._lock:
                    if d.current is not dep:
                        return
                    passed = dep.state == State.CANARY
                    if passed:
                        dep.state = State.PASSED
                        d._save()
                if passed:
                    d.listener("canary-passed", dep)
                self._guard()
                return

    def _guard(self) -> None:
        """After the canary: sched_ext may still eject a passed or kept scheduler later (a
        watchdog stall under a workload the canary never saw). Notice it, record why, and go
        back to what it replaced instead of silently sitting on the kernel default."""
        d, dep = self.d, self.dep
        while not self.stop.wait(GUARD_POLL_S):
            if d.current is not dep:
                return
            reason = self._ejected()
            if reason is not None:
                d._trip(dep, f"after the canary, {reason}", even_kept=True)
                return

    def _ejected(self) -> str | None:
        """Why the deployment no longer runs (None while it does): the kernel's words when
        sched_ext ejected it, another tool's name when that one took over."""
        d, dep, seq = self.d, self.dep, self.seq
        if d._paused:
            return None
        st = read_state()
        if st.enabled and st.ops == dep.ops and d.running and d.running.alive():
            return None
        with d._lock:
            if d.current is not dep:
                return None
        d._eject_error = ""
        # sched_ext logs why only while "disabling", after the state left "enabled": give it a
        # moment, or the reason would be a bare state instead of the kernel's (e.g. the stall)
        deadline = time.monotonic() + SETTLE_S
        while read_state().state == "disabling" and time.monotonic() < deadline:
            time.sleep(0.02)
        ejection = None
        for ev in reversed(kernel_events(seq)):
            if ev.kind == "disabled" and ev.ops == dep.ops:
                if ev.error:
                    d._eject_error = (f"the kernel ejected it ({ev.reason}"
                                      + (f": {ev.message})" if ev.message else ")"))
                ejection = f"sched_ext ejected it: {ev.explanation}"
                break
        now = read_state()
        if now.enabled and now.ops and now.ops != dep.ops:  # someone else's attached since
            # held through scx_loader: ask it (a rare path) so its own switch is named as its
            view = getattr(d.running, "loader_view", None)
            other = identify(now, loader=view() if view else None)
            return f"replaced by {other.owner} ({other.name or now.ops})" + (
                f" after {ejection}" if ejection else "")
        if ejection:
            return ejection
        if d.running and not d.running.alive():
            return "the scheduler's process exited"
        return f"sched_ext no longer runs it (state {st.state or 'unknown'}, ops {st.ops!r})"
