"""The agent's tools: thin wrappers over schedcp.analysis, schedcp.repo and the helper client
that take and return JSON-able values. The offline planner, Claude and the MCP server all use
these same functions, so what one brain can do every brain can do, and nothing here is root.

Errors a caller should see (unknown policy, refused by polkit, no sched_ext...) come out as
``ToolFailure`` with a one-line message; each front end turns it into its own error form.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from ..model import Lesson

# WorkloadFailed: the workload fails under the baseline too (A/B trials), so says nothing
ENVIRONMENT_ERRORS = ("NoSchedExt", "HelperUnavailable", "NotAuthorized", "WorkloadFailed")


class ToolFailure(Exception):
    """A tool refused or failed; ``kind`` is the helper error class name when there is one."""

    def __init__(self, message: str, kind: str = ""):
        super().__init__(message)
        self.kind = kind

    @property
    def environmental(self) -> bool:
        """True when the failure says nothing about the policy (no sched_ext, no helper...)."""
        return self.kind in ENVIRONMENT_ERRORS


def jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def custom_name(source: str) -> str:
    """A stable policy name for generated code: the same text always gets the same name."""
    return "gen_" + hashlib.sha256(source.encode()).hexdigest()[:10]


@dataclass
class ToolSpec:
    name: str
    description: str
    schema: dict
    roles: tuple[str, ...]


def _obj(props: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": props, "required": list(required)}


_STR, _INT, _NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}
_TUNABLES = {"type": "object", "description": "tunable name -> value (int, bool or string)",
             "additionalProperties": True}

SPECS: dict[str, ToolSpec] = {s.name: s for s in [
    ToolSpec("system_summary", "Tier 1: load, CPU pressure, top processes and the workload "
             "kind (game/build/batch/interactive/media/idle). Cheap.",
             _obj({"sample_s": _NUM}), ("observation",)),
    ToolSpec("workload_profile", "Tier 2: the condensed profile of a process tree for a goal "
             "(kind, pids, features, a description used for retrieval).",
             _obj({"pid": _INT, "goal": _STR}, ("pid", "goal")), ("observation",)),
    ToolSpec("details", "Tier 2 details on request: what = process_tree | schedstats | "
             "taskstats | perf_stat | topology.",
             _obj({"what": _STR, "pid": _INT, "seconds": _NUM}, ("what",)), ("observation",)),
    ToolSpec("feedback", "Tier 3: measure the target pids for some seconds (runqueue wait per "
             "second of wall time; lower is better).",
             _obj({"pids": {"type": "array", "items": _INT}, "seconds": _NUM}, ("pids",)),
             ("observation", "execution")),
    ToolSpec("search_policies", "Semantic search of the policy repository (our BPF policies, "
             "packaged scx_* schedulers, generated ones, code primitives).",
             _obj({"query": _STR, "k": _INT, "kind": _STR, "goal": _STR}, ("query",)),
             ("planning",)),
    ToolSpec("get_policy", "One policy: description, goals, tunables with bounds, per-goal "
             "presets and, for BPF policies and primitives, the C source.",
             _obj({"name": _STR}, ("name",)), ("planning",)),
    ToolSpec("list_primitives", "Composable BPF code snippets for writing a new scheduler.",
             _obj({}), ("planning",)),
    ToolSpec("workload_history", "What was tried before on this kind of workload: lessons "
             "(oldest first), the best one, and antipatterns to avoid.",
             _obj({"workload_key": _STR}, ("workload_key",)), ("planning", "learning")),
    ToolSpec("verify_policy", "Verify one of our BPF policies with tunables in the helper's "
             "sandbox (compile, static checks, kernel verifier, a trial run). Returns the "
             "report and, when it passes, a deploy token.",
             _obj({"name": _STR, "tunables": _TUNABLES}, ("name",)),
             ("planning", "execution")),
    ToolSpec("verify_source", "Verify generated BPF C (a complete sched_ext scheduler using "
             "#include \"schedcp.bpf.h\"). A refusal names the stage and says why; fix the "
             "code and verify again.",
             _obj({"source": _STR, "tunables": _TUNABLES}, ("source",)),
             ("planning", "execution")),
    ToolSpec("deploy", "Deploy a verified token with a canary; returns the deployment id.",
             _obj({"token": _STR, "canary_s": _NUM,
                   "target_pids": {"type": "array", "items": _INT}}, ("token",)),
             ("execution",)),
    ToolSpec("switch", "Run a packaged scx_* scheduler with tunables, with a canary.",
             _obj({"name": _STR, "tunables": _TUNABLES, "canary_s": _NUM,
                   "target_pids": {"type": "array", "items": _INT}}, ("name",)),
             ("execution",)),
    ToolSpec("update_hints", "Expected runtimes of a batch's jobs for a running deployment "
             "whose scheduler takes them (ljf): {tgid: nanoseconds}, 0 forgets a tgid.",
             _obj({"id": _STR, "hints": {"type": "object", "additionalProperties": _INT}},
                  ("id", "hints")), ("execution",)),
    ToolSpec("expect_forks", "Expected runtimes (nanoseconds, in birth order) of the next "
             "children a process will fork, for a running deployment that takes hints (ljf); "
             "an empty list stops. Send before the batch starts its jobs.",
             _obj({"id": _STR, "parent": _INT, "runtimes": {"type": "array", "items": _INT}},
                  ("id", "parent", "runtimes")), ("execution",)),
    ToolSpec("keep", "Keep a deployment that is on canary or passed.",
             _obj({"id": _STR}, ("id",)), ("execution",)),
    ToolSpec("revert", "Revert a deployment (default: whatever runs) to the last-known-good.",
             _obj({"id": _STR, "reason": _STR}), ("execution",)),
    ToolSpec("helper_status", "sched_ext support and what runs now.", _obj({}),
             ("observation", "execution")),
    ToolSpec("record_lesson", "Store a lesson (numbers, not prose) in the workload history.",
             _obj({"workload_key": _STR, "policy": _STR, "tunables": _TUNABLES,
                   "outcome": _STR, "score": _NUM, "note": _STR},
                  ("workload_key", "policy", "outcome")), ("learning",)),
]}


def specs_for(role: str) -> list[ToolSpec]:
    return [s for s in SPECS.values() if role in s.roles]


@dataclass
class AgentTools:
    """The tool functions with their context: a policy repository and a helper client, both
    opened lazily (a planner that never deploys never needs the bus)."""

    repo: Any = None
    client: Any = None
    repo_path: Path | None = None
    client_factory: Callable[[], Any] | None = None
    _owned: list = field(default_factory=list)

    # -- context -----------------------------------------------------------------------------
    def repository(self):
        if self.repo is None:
            from ..repo import PolicyRepository

            self.repo = PolicyRepository.open(self.repo_path)
            self._owned.append(self.repo)
        return self.repo

    def helper(self):
        if self.client is None:
            if self.client_factory is None:
                from ..client import HelperClient

                self.client_factory = HelperClient
            try:
                self.client = self.client_factory()
            except Exception as e:
                raise _failure(e) from None
            self._owned.append(self.client)
        return self.client

    def close(self) -> None:
        for thing in reversed(self._owned):
            with contextlib.suppress(Exception):  # closing must not mask the caller's error
                thing.close()
        self._owned.clear()

    def call(self, name: str, args: dict | None = None) -> Any:
        """Dispatch by tool name (what Claude and MCP do); errors become ToolFailure."""
        if name not in SPECS:
            raise ToolFailure(f"unknown tool {name!r}")
        try:
            return getattr(self, name)(**(args or {}))
        except ToolFailure:
            raise
        except TypeError as e:
            raise ToolFailure(f"{name}: bad arguments: {e}") from None
        except Exception as e:
            raise _failure(e) from None

    # -- observation -------------------------------------------------------------------------
    def system_summary(self, sample_s: float = 0.5) -> dict:
        from ..analysis import summarize

        return jsonable(summarize(sample_s))

    def workload_profile(self, pid: int, goal: str) -> dict:
        from ..analysis import profile

        p = profile(int(pid), goal)
        return {**p.to_dict(), "key": p.key}

    def details(self, what: str, pid: int | None = None, seconds: float = 1.0) -> dict:
        from ..analysis import details

        if what == "topology":
            return jsonable(details.topology())
        if pid is None:
            raise ToolFailure(f"details {what!r} needs a pid")
        if what == "process_tree":
            return jsonable(details.process_tree(int(pid)))
        if what == "schedstats":
            return {str(k): list(v) for k, v in details.schedstats([int(pid)]).items()}
        if what == "taskstats":
            return {"taskstats": jsonable(details.taskstats(int(pid)))}
        if what == "perf_stat":
            return {"perf_stat": jsonable(details.perf_stat(int(pid), float(seconds)))}
        raise ToolFailure(f"unknown detail {what!r}: process_tree, schedstats, taskstats, "
                          "perf_stat or topology")

    def feedback(self, pids: list[int], seconds: float = 2.0) -> dict:
        from ..analysis import measure

        return measure([int(p) for p in pids], float(seconds)).to_dict()

    def helper_status(self) -> dict:
        return jsonable(self.helper().status())

    # -- planning ----------------------------------------------------------------------------
    def search_policies(self, query: str, k: int = 5, kind: str | None = None,
                        goal: str | None = None) -> dict:
        hits = self.repository().search(query, k=int(k), kind=kind, goal=goal)
        return {"hits": [jsonable(h) for h in hits]}

    def get_policy(self, name: str) -> dict:
        try:
            return jsonable(self.repository().get(name))
        except KeyError:
            raise ToolFailure(f"no policy named {name!r}; search_policies lists them",
                              "NotFound") from None

    def list_primitives(self) -> dict:
        return {"primitives": [jsonable(p) for p in self.repository().primitives()]}

    def workload_history(self, workload_key: str) -> dict:
        r = self.repository()
        best = r.best(workload_key)
        return {"lessons": [jsonable(x) for x in r.history(workload_key)],
                "best": jsonable(best) if best else None,
                "antipatterns": [jsonable(x) for x in r.antipatterns(workload_key)]}

    # -- execution ---------------------------------------------------------------------------
    def verify_policy(self, name: str, tunables: dict | None = None,
                      on_progress: Callable[[str, str], None] | None = None) -> dict:
        return condense(self.helper().verify_policy(name, tunables or {}, on_progress))

    def verify_source(self, source: str, tunables: dict | None = None, name: str = "",
                      on_progress: Callable[[str, str], None] | None = None) -> dict:
        report = self.helper().verify_source(source.encode(), name or custom_name(source),
                                             tunables or {}, on_progress)
        return condense(report)

    def deploy(self, token: str, canary_s: float = 10.0,
               target_pids: list[int] | None = None) -> dict:
        return {"id": self.helper().deploy(token, _canary(canary_s, target_pids))}

    def switch(self, name: str, tunables: dict | None = None, canary_s: float = 10.0,
               target_pids: list[int] | None = None) -> dict:
        return {"id": self.helper().switch(name, tunables or {},
                                           _canary(canary_s, target_pids))}

    def update_hints(self, id: str, hints: dict) -> dict:
        """Expected runtimes (tgid → ns) for jobs of a running deployment (ljf's hint map)."""
        return {"id": id, "hints": self.helper().update_hints(
            id, {int(k): int(v) for k, v in hints.items()})}

    def expect_forks(self, id: str, parent: int, runtimes: list[int]) -> dict:
        """Runtimes (ns, birth order) of a process's next children, before it forks them."""
        return {"id": id, "parent": int(parent), "count": self.helper().expect_forks(
            id, int(parent), [int(ns) for ns in runtimes])}

    def keep(self, id: str) -> dict:
        return {"id": id, "state": self.helper().keep(id)}

    def revert(self, id: str = "", reason: str = "") -> dict:
        return {"id": id, "state": self.helper().revert(id, reason or "reverted by the agent")}

    # -- learning ----------------------------------------------------------------------------
    def record_lesson(self, workload_key: str, policy: str, outcome: str,
                      tunables: dict | None = None, score: float | None = None,
                      note: str = "") -> dict:
        if outcome == "neutral":  # the word before A/B trials
            outcome = "inconclusive"
        if outcome not in ("improved", "inconclusive", "regressed", "refused", "failed"):
            raise ToolFailure(f"outcome {outcome!r}: "
                              "improved|inconclusive|regressed|refused|failed")
        lesson = Lesson(workload_key, policy, tunables or {}, outcome, score, note)
        self.repository().record(lesson)
        return {"recorded": jsonable(lesson)}


def _canary(seconds: float, pids: list[int] | None) -> dict:
    out: dict = {"window_s": float(seconds)}
    if pids:
        out["target_pids"] = [int(p) for p in pids]
    return out


def condense(report: dict) -> dict:
    """The verifier's report without the bulky parts a brain does not need twice."""
    stages = []
    for s in report.get("stages", []):
        stage = {"name": s.get("name"), "verdict": s.get("verdict"),
                 "message": s.get("message", "")}
        if s.get("verdict") == "fail" and s.get("details"):
            stage["details"] = [str(d)[:300] for d in s["details"][:20]]
        stages.append(stage)
    return {"ok": bool(report.get("ok")), "name": report.get("name", ""),
            "token": report.get("token", "") if report.get("ok") else "",
            "failed_stage": report.get("failed_stage"), "cached": report.get("cached", False),
            "stages": stages}


def _failure(e: Exception) -> ToolFailure:
    from ..client import HelperError

    if isinstance(e, HelperError):
        return ToolFailure(str(e), type(e).__name__)
    if isinstance(e, KeyError):
        return ToolFailure(f"not found: {e}", "NotFound")
    if isinstance(e, (ValueError, OSError, ImportError)):
        return ToolFailure(f"{type(e).__name__}: {e}", type(e).__name__)
    return ToolFailure(f"{type(e).__name__}: {e}", type(e).__name__)
