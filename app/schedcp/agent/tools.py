"""The agent's tools: thin wrappers over schedcp.analysis, schedcp.repo and the helper client
that take and return JSON-able values. The offline planner, Claude and the MCP server all use
these same functions, so what one brain can do every brain can do, and nothing here is root.

Errors a caller should see (unknown policy, refused by polkit, no sched_ext...) come out as
``ToolFailure`` with a one-line message; each front end turns it into its own error form.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from ..model import Lesson
from ..vocabulary import GOALS as VOCAB_GOALS

# WorkloadFailed: the workload fails under the baseline too (A/B trials), so says nothing
ENVIRONMENT_ERRORS = ("NoSchedExt", "HelperUnavailable", "NotAuthorized", "WorkloadFailed")
DEFAULT_KINDS = "bpf,scx,custom"  # searches leave code primitives out unless asked


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
    """One tool, written once: Claude's tool list, the local-model brain's and the MCP server's
    are all derived from it. ``description`` says when to use it; the rest is appended."""

    name: str
    description: str
    schema: dict
    roles: tuple[str, ...]
    returns: str = ""
    takes: str = "instant"  # how long a call usually takes
    effects: str = "none"  # side effects; "none" = read-only
    example: dict | None = None
    destructive: bool = False  # replaces or removes something (what runs, stored history)
    idempotent: bool = True  # the same call again changes nothing more

    @property
    def read_only(self) -> bool:
        return self.effects == "none"

    def full_description(self) -> str:
        out = self.description
        if self.returns:
            out += f" Returns {self.returns}."
        out += f" Takes: {self.takes}. Side effects: {self.effects}."
        if self.example is not None:
            out += f" Example: {json.dumps(self.example, separators=(', ', ': '))}"
        return out

    def annotations(self) -> dict[str, bool]:
        """MCP tool annotations."""
        return {"readOnlyHint": self.read_only, "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent, "openWorldHint": False}


def _obj(props: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False}


def _p(kind: str, description: str, **extra: Any) -> dict:
    return {"type": kind, "description": description, **extra}


GOALS = list(VOCAB_GOALS)  # the one set (schedcp.vocabulary), as JSON schema enums want
DETAILS = ["process_tree", "schedstats", "taskstats", "perf_stat", "topology"]
OUTCOMES = ["improved", "inconclusive", "regressed", "refused", "failed"]
_TUNABLES = _p("object", "tunable name -> value (int, bool or string) within the bounds "
               "get_policy reports; omitted ones keep their defaults",
               additionalProperties=True)
_PIDS = _p("array", "process ids whose scheduling is measured (the canary watches their "
           "runqueue wait)", items={"type": "integer"})
_CANARY = _p("number", "canary window in seconds (1-300): a regression in it reverts "
             "automatically", minimum=1, maximum=300, default=10)
_ID = _p("string", "deployment id, as deploy or switch returned it", pattern="^[0-9a-f]{12}$")
_VM = "about 5-60 s: the first verification of a text boots a micro-VM (cached after)"

SPECS: dict[str, ToolSpec] = {s.name: s for s in [
    ToolSpec("system_summary", "Start here: what the machine is doing now (load, CPU "
             "pressure, the busiest processes and a workload kind).",
             _obj({"sample_s": _p("number", "how long to sample CPU use, seconds",
                                  minimum=0.1, maximum=10, default=0.5)}),
             ("observation",), returns="load, PSI, top processes and kind (game, build, batch, "
             "interactive, media, idle)", takes="sample_s (default 0.5 s)",
             example={"sample_s": 0.5}),
    ToolSpec("workload_profile", "Describe one application (a process and its children) for "
             "a goal before choosing a scheduler; its key indexes the history.",
             _obj({"pid": _p("integer", "the application's main process id", minimum=1),
                   "goal": _p("string", "what to optimize", enum=GOALS)}, ("pid", "goal")),
             ("observation",), returns="kind, pids, features, a description for retrieval and "
             "the workload key", takes="under a second", example={"pid": 4242,
                                                                 "goal": "throughput"}),
    ToolSpec("details", "Drill down when the profile is not enough: the process tree, "
             "scheduler statistics, task accounting, hardware counters or the CPU topology.",
             _obj({"what": _p("string", "which detail", enum=DETAILS),
                   "pid": _p("integer", "process id (all but topology need one)", minimum=1),
                   "seconds": _p("number", "perf_stat sampling time", minimum=0.1,
                                 maximum=30, default=1.0)}, ("what",)),
             ("observation",), returns="the requested detail as JSON",
             takes="instant; perf_stat takes `seconds`",
             example={"what": "process_tree", "pid": 4242}),
    ToolSpec("feedback", "Measure how well processes are scheduled now (before and after a "
             "change): runqueue wait per second of wall time, lower is better.",
             _obj({"pids": _PIDS, "seconds": _p("number", "measurement window",
                                                minimum=0.2, maximum=60, default=2.0)},
                  ("pids",)),
             ("observation", "execution"), returns="runqueue wait (ms/s) and CPU use per pid",
             takes="`seconds` (default 2 s)", example={"pids": [4242], "seconds": 2}),
    ToolSpec("search_policies", "Find schedulers that fit a workload described in words: ours "
             "(bpf), packaged scx_* ones (scx) and generated ones kept earlier (custom). Code "
             "primitives are left out unless kind asks for them (or use list_primitives).",
             _obj({"query": _p("string", "the workload and what hurts, in plain words"),
                   "k": _p("integer", "how many hits", minimum=1, maximum=20, default=5),
                   "kind": _p("string", "restrict to kinds, comma-separated: bpf, scx, custom, "
                              "primitive (default: bpf,scx,custom)"),
                   "goal": _p("string", "only policies that list this goal", enum=GOALS)},
                  ("query",)),
             ("planning",), returns="hits (name, score, kind, one-line summary), best first",
             takes="under a second",
             example={"query": "kernel compile with make -j, long link step", "k": 5}),
    ToolSpec("get_policy", "Read one policy or primitive before configuring or patching it.",
             _obj({"name": _p("string", "policy or primitive name, as search_policies or "
                              "list_primitives gave it")}, ("name",)),
             ("planning",), returns="description, goals, tunables with bounds, per-goal "
             "presets and, for BPF policies, primitives and kept generated ones, the C source",
             example={"name": "ljf"}),
    ToolSpec("list_primitives", "Before writing a new scheduler: the building blocks (runtime "
             "tracking, expected runtime, priority queues, wakeup preemption, vtime...). Paste "
             "a primitive's code (get_policy) into your file; do not #include it.",
             _obj({}), ("planning",), returns="name, summary and how to compose each "
             "(no code: get_policy(name) gives it)", example={}),
    ToolSpec("workload_history", "Before planning for a known workload: what was tried on it "
             "and how it went.",
             _obj({"workload_key": _p("string", "the key workload_profile returned, "
                                      "kind:goal:exe")}, ("workload_key",)),
             ("planning", "learning"), returns="lessons (oldest first), the best one and "
             "antipatterns never to repeat", example={"workload_key":
                                                       "batch:throughput:make"}),
    ToolSpec("installed_schedulers", "Which schedulers can actually run on this machine: ours "
             "(always, once verified) and the packaged scx_* binaries the helper found.",
             _obj({}), ("planning", "execution"), returns="name, kind, available and summary "
             "per scheduler", takes="under a second (asks the helper)", example={}),
    ToolSpec("verify_policy", "Check one of our BPF policies with tunables before deploying "
             "it (compile, static checks, kernel verifier, a trial run under load).",
             _obj({"name": _p("string", "one of our policies (kind bpf)"),
                   "tunables": _TUNABLES}, ("name",)),
             ("planning", "execution"), returns="a per-stage report and, when it passes, a "
             "deploy token", takes=_VM, effects="none on the running system (the trial runs "
             "in a VM); caches the verdict", example={"name": "ljf",
                                                      "tunables": {"slice_us": 25000}}),
    ToolSpec("verify_source", "Check generated BPF C (a complete sched_ext scheduler whose only "
             "include is \"schedcp.bpf.h\") before it can run. A refusal names the stage and "
             "why: fix exactly that and verify again.",
             _obj({"source": _p("string", "the full C text"), "tunables": _TUNABLES},
                  ("source",)),
             ("planning", "execution"), returns="a per-stage report, a handle naming this text "
             "(submit_plan and later calls refer to it instead of resending the code) and, "
             "when it passes, a deploy token", takes=_VM, effects="none on the running "
             "system (the trial runs in a VM); caches the verdict",
             example={"source": "#include \"schedcp.bpf.h\"\n...SCHEDCP_OPS(mine, ...);"}),
    ToolSpec("deploy", "Run a verified scheduler (ours or generated) on this machine.",
             _obj({"token": _p("string", "the token a passing verify_* returned"),
                   "canary_s": _CANARY, "target_pids": _PIDS}, ("token",)),
             ("execution",), returns="the deployment id", takes="a few seconds to start; the "
             "canary then watches for canary_s", effects="replaces the running scheduler "
             "(reverted automatically on ejection or regression; revert undoes it)",
             destructive=True, idempotent=False, example={"token": "…", "canary_s": 10}),
    ToolSpec("switch", "Run a packaged scx_* scheduler (installed_schedulers lists them) with "
             "tunables.",
             _obj({"name": _p("string", "an available scx_* scheduler"),
                   "tunables": _TUNABLES, "canary_s": _CANARY, "target_pids": _PIDS},
                  ("name",)),
             ("execution",), returns="the deployment id", takes="a few seconds",
             effects="replaces the running scheduler (revert undoes it)", destructive=True,
             idempotent=False, example={"name": "scx_lavd", "canary_s": 10}),
    ToolSpec("deployment_status", "Is the scheduler still running, how did its canary go, and "
             "what did it print? Use after deploy/switch and before keep.",
             _obj({"id": _p("string", "deployment id (default: the current one)")}),
             ("execution",), returns="sched_ext state, the deployment (state, reason, "
             "metrics) and the scheduler's recent output", example={"id": "3f2a9c0d1e4b"}),
    ToolSpec("update_hints", "For a running ljf deployment: expected runtimes of a batch's "
             "jobs by tgid (0 forgets one).",
             _obj({"id": _ID, "hints": _p("object", "tgid -> expected runtime in ns",
                                         additionalProperties={"type": "integer"})},
                  ("id", "hints")), ("execution",), returns="how many hints are held",
             effects="changes the running scheduler's hint map",
             example={"id": "3f2a9c0d1e4b", "hints": {"4243": 2000000000}}),
    ToolSpec("expect_forks", "For a running ljf deployment, before the batch starts: expected "
             "runtimes (ns, birth order) of the next children a process will fork; [] stops.",
             _obj({"id": _ID, "parent": _p("integer", "the forking process", minimum=1),
                   "runtimes": _p("array", "ns per child, in birth order",
                                  items={"type": "integer"})}, ("id", "parent", "runtimes")),
             ("execution",), returns="how many are queued", effects="queues hints in the "
             "running scheduler", idempotent=False,
             example={"id": "3f2a9c0d1e4b", "parent": 4242, "runtimes": [2000000000, 1000000]}),
    ToolSpec("keep", "Make a deployment that is on canary or passed the last-known-good.",
             _obj({"id": _ID}, ("id",)), ("execution",), returns="its new state",
             effects="the scheduler stays after this client exits and across helper restarts",
             example={"id": "3f2a9c0d1e4b"}),
    ToolSpec("revert", "Undo a deployment (default: whatever runs) back to the last-known-good "
             "or the kernel default.",
             _obj({"id": _p("string", "deployment id (default: the current one)"),
                   "reason": _p("string", "why, for the history")}),
             ("execution",), returns="its new state", takes="a second",
             effects="replaces the running scheduler", destructive=True,
             example={"id": "3f2a9c0d1e4b", "reason": "no gain"}),
    ToolSpec("helper_status", "Can anything be deployed here (sched_ext, helper) and what runs?",
             _obj({}), ("observation", "execution"), returns="sched_ext support, state and "
             "the current deployment", example={}),
    ToolSpec("record_lesson", "After a measurement: store what it taught (numbers, not prose) "
             "so the next run on this workload starts from it.",
             _obj({"workload_key": _p("string", "the workload's key"),
                   "policy": _p("string", "the policy tried"), "tunables": _TUNABLES,
                   "outcome": _p("string", "the verdict", enum=OUTCOMES),
                   "score": _p("number", "improvement as a fraction (0.12 = 12 % better)"),
                   "note": _p("string", "one line for the next planner")},
                  ("workload_key", "policy", "outcome")), ("learning",),
             returns="the stored lesson", effects="adds a lesson to the history",
             idempotent=False, example={"workload_key": "batch:throughput:make",
                                        "policy": "ljf", "outcome": "improved", "score": 0.12}),
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
    # generated sources by handle (what verify_source returned), so a plan names the code
    # instead of carrying it again
    sources: dict[str, str] = field(default_factory=dict)
    # the user said: another tool's scheduler (scx_loader, scx.service) may be stopped for this
    # optimization and given back after; never set by a brain
    take_over: bool = False
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
            raise ToolFailure(f"unknown tool {name!r}{did_you_mean(name, SPECS)}", "NotFound")
        args = dict(args or {})
        props = SPECS[name].schema["properties"]
        accepted = inspect.signature(getattr(self, name)).parameters  # + internal ones
        for arg in args:
            if arg not in accepted:
                raise ToolFailure(f"{name} has no argument {arg!r}{did_you_mean(arg, props)}; "
                                  f"it takes {', '.join(props) or 'none'}", "InvalidArgs")
        try:
            return getattr(self, name)(**args)
        except ToolFailure:
            raise
        except TypeError as e:
            raise ToolFailure(f"{name}: bad arguments: {e}", "InvalidArgs") from None
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

        if what not in DETAILS:
            raise ToolFailure(f"unknown detail {what!r}{did_you_mean(what, DETAILS)}; one of "
                              f"{', '.join(DETAILS)}", "InvalidArgs")
        if what == "topology":
            return jsonable(details.topology())
        if pid is None:
            raise ToolFailure(f"details {what!r} needs a pid", "InvalidArgs")
        if what == "process_tree":
            return jsonable(details.process_tree(int(pid)))
        if what == "schedstats":
            return {str(k): list(v) for k, v in details.schedstats([int(pid)]).items()}
        if what == "taskstats":
            return {"taskstats": jsonable(details.taskstats(int(pid)))}
        if what == "perf_stat":
            return {"perf_stat": jsonable(details.perf_stat(int(pid), float(seconds)))}
        raise AssertionError(what)  # DETAILS and the branches above list the same names

    def feedback(self, pids: list[int], seconds: float = 2.0) -> dict:
        from ..analysis import measure

        return measure([int(p) for p in pids], float(seconds)).to_dict()

    def helper_status(self) -> dict:
        return jsonable(self.helper().status())

    # -- planning ----------------------------------------------------------------------------
    def search_policies(self, query: str, k: int = 5, kind: str | None = None,
                        goal: str | None = None) -> dict:
        hits = self.repository().search(query, k=int(k), kind=kind or DEFAULT_KINDS, goal=goal)
        return {"hits": [jsonable(h) for h in hits]}

    def get_policy(self, name: str) -> dict:
        repo = self.repository()
        try:
            return jsonable(repo.get(name))
        except KeyError:
            raise ToolFailure(f"no policy named {name!r}{did_you_mean(name, repo.names())}; "
                              "search_policies and list_primitives list them",
                              "NotFound") from None

    def list_primitives(self) -> dict:
        """Summaries and compose notes only (the code is get_policy's): small enough for any
        model's tool result."""
        out = []
        for p in self.repository().primitives():
            _, _, compose = p.description.partition("How to compose: ")
            out.append({"name": p.name, "summary": p.summary, "compose": compose})
        return {"primitives": out, "code": "get_policy(name) returns a primitive's code; paste "
                "it into the scheduler (the only include allowed is \"schedcp.bpf.h\")"}

    def installed_schedulers(self) -> dict:
        repo = self.repository()
        out = []
        for s in self.helper().list_schedulers():
            try:
                summary = repo.get(s["name"]).summary
            except KeyError:
                summary = ""
            out.append({"name": s["name"], "kind": s.get("kind", ""),
                        "available": bool(s.get("available") or s.get("kind") == "bpf"),
                        "summary": summary})
        return {"schedulers": out}

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
        handle = custom_name(source)
        self.sources[handle] = source
        report = self.helper().verify_source(source.encode(), name or handle,
                                             tunables or {}, on_progress)
        return {"handle": handle, **condense(report)}

    def deploy(self, token: str, canary_s: float = 10.0,
               target_pids: list[int] | None = None) -> dict:
        return {"id": self.helper().deploy(token, _canary(canary_s, target_pids,
                                                          self.take_over))}

    def switch(self, name: str, tunables: dict | None = None, canary_s: float = 10.0,
               target_pids: list[int] | None = None) -> dict:
        return {"id": self.helper().switch(name, tunables or {},
                                           _canary(canary_s, target_pids, self.take_over))}

    def update_hints(self, id: str, hints: dict) -> dict:
        """Expected runtimes (tgid → ns) for jobs of a running deployment (ljf's hint map)."""
        return {"id": id, "hints": self.helper().update_hints(
            id, {int(k): int(v) for k, v in hints.items()})}

    def expect_forks(self, id: str, parent: int, runtimes: list[int]) -> dict:
        """Runtimes (ns, birth order) of a process's next children, before it forks them."""
        return {"id": id, "parent": int(parent), "count": self.helper().expect_forks(
            id, int(parent), [int(ns) for ns in runtimes])}

    def deployment_status(self, id: str = "") -> dict:
        helper = self.helper()
        st = jsonable(helper.status())
        current = st.get("deployment") or ""
        want = id or current
        dep = None
        if want:
            dep = next((d for d in reversed(helper.history(50)) if d.get("id") == want), None)
            if dep is None:
                raise ToolFailure(f"no deployment {want!r} in the helper's recent history",
                                  "NotFound")
        running = bool(want) and want == current
        return {"sched_ext": {k: st.get(k) for k in ("supported", "state", "ops")},
                # who holds the CPU scheduler ("scx_lavd via scx_loader (Gaming)") and what a
                # take-over did: another tool's scheduler is the user's, never replaced silently
                "others": {k: st.get(k) for k in ("others", "attached_owner", "taken_over",
                                                  "given_back", "conflict") if st.get(k)},
                "deployment": dep, "running": running,
                "output": str(st.get("deployment_output", ""))[-4000:] if running else ""}

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
        if outcome not in OUTCOMES:
            raise ToolFailure(f"outcome {outcome!r}{did_you_mean(outcome, OUTCOMES)}: "
                              + "|".join(OUTCOMES), "InvalidArgs")
        lesson = Lesson(workload_key, policy, tunables or {}, outcome, score, note)
        self.repository().record(lesson)
        return {"recorded": jsonable(lesson)}


def _canary(seconds: float, pids: list[int] | None, take_over: bool = False) -> dict:
    out: dict = {"window_s": float(seconds)}
    if pids:
        out["target_pids"] = [int(p) for p in pids]
    if take_over:
        out["take_over"] = True
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
    """The message without a type prefix: front ends add ``kind`` once, where they show it."""
    from ..client import HelperError

    if isinstance(e, HelperError):
        return ToolFailure(str(e), type(e).__name__)
    if isinstance(e, KeyError):
        return ToolFailure(f"not found: {e}", "NotFound")
    return ToolFailure(str(e) or type(e).__name__, type(e).__name__)


def did_you_mean(word: str, choices: Any) -> str:
    """" (did you mean 'x'?)" when a choice is close, else ""."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def error_text(e: ToolFailure) -> str:
    """``Kind: message`` with the kind once, however the message starts."""
    msg = str(e)
    if not e.kind or msg.startswith(f"{e.kind}:"):
        return msg
    return f"{e.kind}: {msg}"


def fit_result(result: Any, limit: int) -> str:
    """A tool result as JSON text of at most ``limit`` characters that is still valid JSON:
    a result too large is replaced by a note on what to ask for instead, never cut."""
    text = json.dumps(result, default=str)
    if len(text) <= limit:
        return text
    sizes = ({k: len(json.dumps(v, default=str)) for k, v in result.items()}
             if isinstance(result, dict) else {})
    return json.dumps({"error": f"result too large ({len(text)} characters, limit {limit}); "
                       "ask for less (a smaller k, one policy by name)",
                       "kind": "TooLarge", "sizes": sizes})
