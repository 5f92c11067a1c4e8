"""A simulated helper for loop mechanics the host cannot show (it has no sched_ext): every
scheduler verifies and deploys, and what runs changes the workload's makespan by a known
factor. Only the helper is simulated; the repository and the planners are the real ones."""

from __future__ import annotations

import itertools
import json

from schedcp.model import Metrics, WorkloadProfile

PROFILE = WorkloadProfile("batch", "throughput", 42, [42], exe="/usr/bin/crunch",
                          description="CPU-bound batch jobs of unequal length, a long tail")


class SimHelper:
    """Stands in for HelperClient where the host cannot deploy: every scheduler verifies and
    deploys; what runs changes the workload's makespan by ``effect[(policy, tunables)]``."""

    def __init__(self, effect: dict[str, float]):
        self.effect, self.running, self.calls = effect, None, []
        self._ids = itertools.count(1)
        self.deps: dict[str, str] = {}
        self.kept: str | None = None

    def _key(self, name, tunables):
        return name + json.dumps(tunables or {}, sort_keys=True)

    def list_schedulers(self):
        return []

    def verify_policy(self, name, tunables=None, on_progress=None, timeout=None):
        self.calls.append(("verify", name))
        return {"ok": True, "name": name, "token": "tok:" + self._key(name, tunables),
                "stages": [{"name": "static", "verdict": "pass", "message": ""}]}

    def deploy(self, token, canary=None):
        dep = f"d{next(self._ids)}"
        self.deps[dep] = token.removeprefix("tok:")
        self.running = dep
        self.calls.append(("deploy", self.deps[dep]))
        return dep

    def switch(self, name, tunables=None, canary=None):
        return self.deploy("tok:" + self._key(name, tunables))

    def revert(self, dep_id="", reason=""):
        if self.running == dep_id:
            self.running = None
        return "reverted"

    def keep(self, dep_id):
        self.kept = self.deps[dep_id]
        return "kept"

    def status(self):
        return {"deployment": self.running or ""}

    def makespan(self) -> float:
        return 10.0 * self.effect.get(self.deps.get(self.running, ""), 1.0)

    def close(self):
        pass


class SimExecutor:
    target_pids = ()

    def __init__(self, helper: SimHelper):
        self.helper, self.runs = helper, 0

    def observe(self, goal):
        return WorkloadProfile.from_dict(PROFILE.to_dict()), self.measure()

    def measure(self):
        self.runs += 1
        return Metrics(makespan_s=self.helper.makespan(), source="simulated makespan")
