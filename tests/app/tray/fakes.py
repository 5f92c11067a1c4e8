"""Stand-ins for the offscreen tests: a DesktopSession that records calls and lets the test
fire its listener events (from another thread, as the real one does), a foreground watcher,
and an optimization runner that emits real-looking step records."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace


@dataclass(frozen=True)
class Ident:
    app_id: str
    name: str
    exe: str = ""
    kind: str = "app"


@dataclass
class FakeSession:
    state: str = "default"
    problem: str = ""
    listeners: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    records: list = field(default_factory=list)

    def add_listener(self, cb) -> None:
        self.listeners.append(cb)

    def fire(self, kind: str, info: dict, thread: bool = True) -> None:
        def go():
            for cb in self.listeners:
                cb(kind, info)
        if thread:
            t = threading.Thread(target=go)
            t.start()
            t.join()
        else:
            go()

    def connect(self) -> None:
        self.calls.append(("connect",))

    def revert(self, dep_id: str = "", reason: str = "user") -> None:
        self.calls.append(("revert", dep_id, reason))

    def keep(self, dep_id: str) -> None:
        self.calls.append(("keep", dep_id))

    def record_step(self, step: dict) -> None:
        self.calls.append(("record_step", step))

    def announce(self, dep_id: str, what: str, app: str = "", effect: str = "",
                 source: str = "agent") -> int:
        self.calls.append(("announce", dep_id, what, app, effect))
        return 1

    def history(self, limit: int = 50) -> list[dict]:
        return list(self.records)

    def close(self) -> None:
        self.calls.append(("close",))


class FakeForeground:
    def __init__(self, cur=None):
        self.cur = cur
        self.stopped = False

    def current(self):
        return self.cur

    def stop(self) -> None:
        self.stopped = True


class FakeSecrets:
    """desktop.settings' key/autostart functions, in memory; ``broken`` mimics no keyring."""

    def __init__(self, key: str | None = None, broken: str = ""):
        self.key, self.broken, self.autostart = key, broken, None

    def secrets_status(self):
        return (not self.broken, self.broken)

    def get_api_key(self):
        return None if self.broken else self.key

    def set_api_key(self, key):
        if self.broken:
            raise RuntimeError(self.broken)
        self.key = key or None

    def set_autostart(self, enabled: bool):
        self.autostart = enabled


def steps(goal: str = "responsiveness") -> list[dict]:
    """The records an OptimizationLoop emits for one improving iteration, then a stop."""
    before = {"runqueue_wait_ms_per_s": 4.0, "wake_p99_ms": None, "makespan_s": None}
    after = {"runqueue_wait_ms_per_s": 2.6, "wake_p99_ms": None, "makespan_s": None}
    plan = {"policy": "vtime", "tunables": {"slice_us": 3000},
            "rationale": "interactive app: short slices", "brain": "offline", "source": None}
    return [
        {"iteration": 0, "role": "observation", "seconds": 3.0,
         "profile": {"kind": "interactive"}, "key": "interactive:x", "baseline": before},
        {"iteration": 1, "role": "planning", "seconds": 0.01, "plan": plan},
        {"iteration": 1, "role": "execution", "seconds": 4.0, "improvement": 0.35,
         "outcome": {"plan": plan, "verified": True, "after": after, "before": before,
                     "deployment_id": "d1", "message": ""}},
        {"iteration": 1, "role": "learning", "seconds": 0.0, "lesson": {}},
    ]


def fake_runner(block: threading.Event | None = None, step_list=None):
    """An ``optimizer.run`` stand-in: emits ``steps()``, then (if ``block``) waits for the
    cancel Event or ``block``; returns a LoopResult-like object."""
    seen = {}

    def run(req, settings, on_step, cancel, client_factory=None, on_progress=None):
        seen["req"] = req
        for s in step_list if step_list is not None else steps(req.goal):
            on_step(s)
            if s["role"] == "planning" and on_progress is not None:
                on_progress("load", "the kernel verifier accepted it")
        if block is not None:
            while not (cancel.is_set() or block.is_set()):
                time.sleep(0.01)
        reason = "cancelled" if cancel.is_set() else "converged"
        msg = "cancelled by the user" if cancel.is_set() else "no new best in 3 iterations; " \
            "kept vtime (+35.0%)"
        on_step({"iteration": 1, "role": "stop", "seconds": 0.0, "reason": reason,
                 "message": msg})
        return SimpleNamespace(stop_reason=reason, message=msg, steps=[], seconds=0.0,
                               best=None if cancel.is_set() else {
                                   "kept": "d1", "state": "kept", "policy": "vtime",
                                   "tunables": {"slice_us": 3000}, "improvement": 0.35})
    run.seen = seen
    return run


# History records in DesktopSession.history's own shape (flat name/tunables/previous, its own
# effect wording), as examples for the window's tests.
T0 = 1795840000.0
EXAMPLE_HISTORY = [
    {"id": "a1", "name": "scx_rusty", "kind": "scx", "tunables": {}, "state": "reverted",
     "started": T0 - 7200, "reason": "runnable task stall", "previous": "", "metrics": [],
     "app": "blender", "why": "build-like: many short CPU-bound tasks", "source": "agent"},
    {"id": "a2", "name": "vtime", "kind": "bpf", "tunables": {"slice_us": 3000},
     "state": "kept", "started": T0, "reason": "", "previous": "",
     "metrics": [{"t": T0 + 1 + i, "value": v, "baseline": 4.1}
                 for i, v in enumerate((3.1, 2.7, 2.9, 2.6, 2.5, 2.8, 2.6, 2.4, 2.7, 2.5))],
     "app": "Firefox", "goal": "responsiveness", "source": "agent",
     "why": "interactive workload: short slices and wake-up preemption cut queueing",
     "before": {"runqueue_wait_ms_per_s": 4.1, "wake_p99_ms": 3.2},
     "after": {"runqueue_wait_ms_per_s": 2.6, "wake_p99_ms": 2.1}, "improvement": 0.34},
    {"id": "a3", "name": "ljf", "kind": "bpf", "tunables": {}, "state": "kept",
     "started": T0 + 3600, "reason": "", "previous": "vtime", "metrics": [],
     "app": "make", "goal": "throughput", "source": "profile", "why": "profile for make",
     "effect": "batch run time 11.7 s \u2192 10.3 s, 12 % faster (9\u202615 %, 6+6 runs)"},
]
