"""The tray's session with the helper, without Qt: one helper connection (it holds our unkept
deployments), the state the icon shows, notifications with Revert/Keep, per-app profiles, and
the history of what ran and why.

Listeners get ``(kind, info)`` from whatever thread noticed (the bus thread, the profile
watcher, a notification action); the tray re-posts them to the Qt thread.

    "state"     {state, problem, status}
    "deployed"  {dep_id, name, state}        a deployment started (canary) or changed state
    "reverted"  {dep_id, reason, automatic}  it ended; automatic ones are the breaker's
    "profile"   {kind, app_id, name, policy, ...info}   ProfileManager's events
    "notice"    {message, level}             something the user should read (errors)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..client import HelperClient, HelperError, HelperUnavailable, NoSchedExt, NotAuthorized
from ..missing import no_helper, no_sched_ext
from ..vocabulary import (
    CHECK_SECONDS,
    PREVIOUS,
    UNDO,
    checking_text,
    outcome_sentence,
    plain_reason,
)
from .neighbours import GameModeWatch, PowerProfileWatch, effective_goal
from .notify import Notifier
from .profiles import Profile, ProfileStore
from .profilewatch import ProfileManager
from .settings import Settings, atomic_write, data_dir

log = logging.getLogger("schedcp.desktop.session")
MAX_STEPS = 2000

# the full "what is missing" text for this machine (running release, why, how to check, which
# kernels have it, `schedcp demo`): computed once, the kernel does not change under us
NO_SCHED_EXT = no_sched_ext()


def describe_problem(e: BaseException) -> str:
    """What is missing and how to fix it, in a sentence or two."""
    if isinstance(e, HelperUnavailable):
        return no_helper(e.message)
    if isinstance(e, NotAuthorized):
        return ("polkit refused this user access to the SchedCP helper: ask an administrator "
                "to allow the org.schedcp.helper.* actions for you, or run from an active local "
                f"session. ({e.message})")
    if isinstance(e, NoSchedExt):
        return NO_SCHED_EXT
    return f"The SchedCP helper failed: {e}"


class DesktopSession:
    def __init__(self, client_factory: Callable[[], HelperClient] = HelperClient,
                 settings: Settings | None = None, notifier: Notifier | None = None,
                 store: ProfileStore | None = None, *, steps_path: Path | None = None,
                 watch_programs: bool = True, neighbours: bool | None = None):
        self.client_factory = client_factory
        self.settings = settings or Settings.load()
        self._own_notifier = notifier is None
        self.notifier = notifier if notifier is not None else Notifier()
        self.store = store if store is not None else ProfileStore()
        self.steps_path = steps_path or data_dir() / "steps.jsonl"
        self.watch_programs = watch_programs
        self.client: HelperClient | None = None
        self.profiles: ProfileManager | None = None
        self.state = "unavailable"
        self.problem = ""
        self.status: dict = {}
        self._listeners: list[Callable[[str, dict], None]] = []
        self._lock = threading.RLock()
        self._attention = ""  # the reason of an automatic revert not yet acknowledged
        self._prompts: dict[str, int] = {}  # app id → its open "apply?"/"applying" notification
        self._ours: dict[str, dict] = {}  # dep id → {what, app, effect, source, notification}
        self._seen_deps: dict[str, str] = {}  # dep id → last state we told listeners
        self._unsubscribe: Callable[[], None] | None = None
        self._others = ""  # the helper's one line on who holds the CPU scheduler
        # power profile and GameMode (issue 17); by default with the program watcher
        self.neighbours = watch_programs if neighbours is None else neighbours
        self.power: PowerProfileWatch | None = None
        self.gamemode: GameModeWatch | None = None

    # -- listeners ------------------------------------------------------------------------------
    def add_listener(self, cb: Callable[[str, dict], None]) -> None:
        self._listeners.append(cb)

    def _emit(self, kind: str, info: dict) -> None:
        for cb in list(self._listeners):
            try:
                cb(kind, info)
            except Exception:
                log.exception("session listener failed on %s", kind)

    def _notice(self, message: str, level: str = "error") -> None:
        self._emit("notice", {"message": message, "level": level})

    # -- connection and state ----------------------------------------------------------------
    def connect(self) -> None:
        """Connect (again) to the helper and start watching for profiled apps. Never raises:
        failures become ``state`` "unavailable" with ``problem`` saying how to fix them."""
        self._disconnect()
        try:
            client = self.client_factory()
        except Exception as e:
            self._set_state("unavailable", describe_problem(e))
        else:
            self.client = client
            self._unsubscribe = client.subscribe(self._on_signal)
            try:
                self._apply_status(client.status())
            except Exception as e:
                self._set_state("unavailable", describe_problem(e))
        if self.neighbours:
            self.start_neighbours()
        if self.watch_programs:
            self.profiles = ProfileManager(self.store, self.client,
                                           # never where switching cannot work: an apply
                                           # would only fail, after a long sandbox check
                                           enabled=lambda: self.settings.auto_apply_profiles
                                           and self.state != "unavailable",
                                           on_event=self._on_profile)
            self.profiles.start()
            if self.profiles.error:
                self._notice(f"Per-app profiles cannot be applied automatically: "
                             f"{self.profiles.error}", "warning")

    # -- the other tuners: power profile → goal, GameMode → per-app profiles ---------------------
    def start_neighbours(self, system_address: str | None = None,
                         session_address: str | None = None) -> None:
        self.stop_neighbours()
        self.power = PowerProfileWatch(self._on_power_profile, system_address).start()
        self.gamemode = GameModeWatch(self._on_game, session_address).start()

    def stop_neighbours(self) -> None:
        for w in (self.power, self.gamemode):
            if w is not None:
                w.close()
        self.power = self.gamemode = None

    @property
    def goal(self) -> str:
        """The goal an optimization starts with: the user's choice, else power-saver → battery."""
        profile = self.power.profile if self.power is not None else ""
        return effective_goal(self.settings.default_goal, self.settings.goal_chosen, profile)

    def _on_power_profile(self, profile: str) -> None:
        self._emit("power", {"profile": profile, "goal": self.goal})

    def _on_game(self, kind: str, pid: int) -> None:
        """GameMode says a game started/stopped: its per-app profile applies/ends now."""
        self._emit("game", {"kind": kind, "pid": pid})
        if self.profiles is not None:
            self.profiles.game(kind, pid)

    def _disconnect(self) -> None:
        if self.profiles is not None:
            self.profiles.stop()
            self.profiles = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.client is not None:
            client, self.client = self.client, None
            client.close()

    def _compute_state(self, st: dict) -> tuple[str, str]:
        if not st.get("supported", False):
            return "unavailable", NO_SCHED_EXT
        if self._attention:
            return "attention", f"Reverted automatically: {self._attention}"
        dep_state = st.get("deployment_state", "")
        if st.get("attached_owner") not in (None, "", "schedcp") and not st.get("deployment"):
            return "default", ""  # another tool's scheduler: not ours to show as optimized
        if st.get("deployment") and dep_state == "canary":
            return "canary", ""
        if (st.get("deployment") and dep_state in ("passed", "kept")) or st.get("state") == (
                "enabled"):
            return "optimized", ""
        return "default", ""

    def _apply_status(self, st: dict) -> None:
        with self._lock:
            self.status = dict(st)
            state, problem = self._compute_state(st)
        self._set_state(state, problem)

    def _set_state(self, state: str, problem: str) -> None:
        with self._lock:
            others = self.status.get("others", "")
            changed = (state, problem, others) != (self.state, self.problem, self._others)
            self.state, self.problem, self._others = state, problem, others
        if changed:
            self._emit("state", {"state": state, "problem": problem, "status": dict(self.status)})

    def acknowledge(self) -> None:
        """The user saw the automatic revert: the icon goes back from "attention"."""
        with self._lock:
            self._attention = ""
            st = dict(self.status)
        self._apply_status(st)

    def refresh(self) -> None:
        if self.client is None:
            return
        try:
            self._apply_status(self.client.status())
        except HelperError as e:
            self._set_state("unavailable", describe_problem(e))

    # -- helper signals (bus thread) -------------------------------------------------------------
    def _on_signal(self, sig) -> None:
        if sig.member == "StateChanged":
            self._apply_status(sig.args[0])
        elif sig.member == "DeploymentChanged":
            dep_id, state = sig.args
            self._on_deployment(dep_id, state)
        elif sig.member == "Reverted":
            dep_id, reason = sig.args
            self._on_auto_revert(dep_id, reason)

    def _on_deployment(self, dep_id: str, state: str) -> None:
        with self._lock:
            if self._seen_deps.get(dep_id) == state:
                return
            self._seen_deps[dep_id] = state
            if len(self._seen_deps) > 500:
                del self._seen_deps[next(iter(self._seen_deps))]
            if state == "canary":
                self._attention = ""  # something new runs: the old revert is history
            ours = dict(self._ours.get(dep_id, {}))
        name = self.status.get("deployment_name", "") if self.status.get(
            "deployment") == dep_id else ""
        if state in ("reverted", "failed", "replaced"):
            if self.profiles is not None:
                self.profiles.forget_deployment(dep_id)
            self._emit("reverted", {"dep_id": dep_id, "reason": state, "automatic": False,
                                    "name": ours.get("what", name)})
            if ours.get("notification"):
                self.notifier.close_notification(ours["notification"])
        else:
            self._emit("deployed", {"dep_id": dep_id, "state": state,
                                    "name": ours.get("what", name), "app": ours.get("app", "")})

    def _on_auto_revert(self, dep_id: str, reason: str) -> None:
        with self._lock:
            self._attention = reason or "the helper reverted it"
            ours = dict(self._ours.get(dep_id, {}))
            st = dict(self.status)
        what = ours.get("what") or "the scheduler"
        plain, _details = plain_reason(reason)
        self._emit("reverted", {"dep_id": dep_id, "reason": reason, "plain": plain,
                                "automatic": True, "name": what})
        if ours.get("notification"):
            self.notifier.close_notification(ours["notification"])
        self.notifier.notify(f"Undone: {what}" + (f" for {ours['app']}" if ours.get("app")
                                                  else ""),
                             f"{plain[:1].upper()}{plain[1:]}. Back to {PREVIOUS}; History "
                             "has the details.",
                             icon="dialog-warning", critical=True)
        self._apply_status(st)

    # -- deployments we made ------------------------------------------------------------------
    def announce(self, dep_id: str, what: str, app: str = "", effect: str = "",
                 source: str = "agent") -> int:
        """Tell the user a deployment of ours runs ("X now runs for Y" and the effect sentence)
        with Undo and Keep; the tray calls it when an optimization ends with a winner. ``what``
        is the scheduler's name: tunables stay in History's details. Returns the notification
        id (0: no notification service)."""
        summary = f"{what} now runs" + (f" for {app}" if app else "")
        body = (f"{effect}. " if effect else "") + (
            (f"Keep it, or undo: back to {PREVIOUS}. Unkept, it is undone when SchedCP quits.")
            if source != "profile" else
            f"From your profile for {app}; {PREVIOUS} comes back when it exits.")
        nid = self.notifier.notify(summary, body, {"revert": UNDO, "keep": "Keep"},
                                   lambda key: self._on_action(dep_id, key),
                                   icon="schedcp")
        with self._lock:
            self._ours[dep_id] = {"what": what, "app": app, "effect": effect, "source": source,
                                  "notification": nid}
        return nid

    def _on_action(self, dep_id: str, key: str) -> None:
        # from the notifier's thread: do the helper call elsewhere so it is never blocked
        target = {"revert": lambda: self.revert(dep_id, "user (notification)"),
                  "keep": lambda: self.keep(dep_id)}.get(key)
        if target is not None:
            threading.Thread(target=target, name=f"schedcp-{key}", daemon=True).start()

    def revert(self, dep_id: str = "", reason: str = "user") -> None:
        """Revert ``dep_id`` (or whatever runs); errors become a "notice"."""
        if self.client is None:
            self._notice(self.problem or "not connected to the SchedCP helper")
            return
        try:
            self.client.revert(dep_id, reason)
        except HelperError as e:
            self._notice(f"{UNDO} failed: {e}")
        with self._lock:
            self._attention = ""
        self.refresh()

    def keep(self, dep_id: str) -> None:
        if self.client is None:
            self._notice(self.problem or "not connected to the SchedCP helper")
            return
        try:
            self.client.keep(dep_id)
        except HelperError as e:
            self._notice(f"Keep failed: {e}")
        self.refresh()

    # -- profiles --------------------------------------------------------------------------------
    def _on_profile(self, kind: str, profile: Profile, info: dict) -> None:
        what = profile.policy  # the tunables are in the profile and History's details
        if kind == "started" and self.state == "unavailable":
            # switching cannot work here: offering "apply?" would only fail after a long wait
            log.info("%s started; its profile is not offered: %s", profile.name, self.problem)
            kind, info = "not-offered", {**info, "problem": self.problem}
        self._emit("profile", {"kind": kind, "app_id": profile.app_id, "name": profile.name,
                               "policy": profile.policy, **info})
        if kind == "applied":
            self._close_prompt(profile.app_id)
            self.announce(info["dep_id"], what, profile.name, source="profile")
        elif kind == "started":
            pid = info["pid"]
            nid = self.notifier.notify(
                f"{profile.name} started: apply its profile?",
                f"Runs {what} while {profile.name} runs (goal: {profile.goal}). It is checked "
                f"in a sandbox first, about {CHECK_SECONDS} s.",
                {"apply": "Apply"}, lambda key: self._apply_later(profile.app_id, pid, key),
                icon="schedcp")
            with self._lock:
                self._prompts[profile.app_id] = nid
        elif kind == "failed":
            self._close_prompt(profile.app_id)
            try:  # History keeps failed applies too
                self.record_step({"role": "profile-failed", "t": time.time(),
                                  "app": profile.name, "goal": profile.goal,
                                  "policy": profile.policy, "error": info.get("error", "")})
            except OSError as e:
                log.warning("cannot record a failed apply: %s", e)
            self.notifier.notify(f"Could not apply the profile for {profile.name}",
                                 info.get("error", ""), icon="dialog-error")
            self._notice(f"Profile for {profile.name}: {info.get('error', '')}")
        elif kind == "restored":
            with self._lock:
                nid = self._ours.get(info.get("dep_id", ""), {}).get("notification")
            if nid:
                self.notifier.close_notification(nid)

    def _close_prompt(self, app_id: str) -> None:
        with self._lock:
            nid = self._prompts.pop(app_id, 0)
        if nid:
            self.notifier.close_notification(nid)

    def _apply_later(self, app_id: str, pid: int, key: str) -> None:
        """The answer to "apply its profile?" (from the notifier's thread: every bus call,
        closing the question included, is made from a thread of its own)."""

        def run():
            self._close_prompt(app_id)  # answered: the question goes away whatever the answer
            profile = self.store.get(app_id)
            if key != "apply" or profile is None or self.profiles is None:
                return
            nid = self.notifier.notify(  # say what the wait is for, and how long it is
                f"Applying the profile for {profile.name}",
                f"C{checking_text(profile.policy)[1:]}, before it runs.",
                icon="schedcp")
            with self._lock:
                self._prompts[app_id] = nid
            t = time.monotonic()
            try:
                dep_id = self.profiles.apply(app_id, pid)
            except Exception as e:
                self._on_profile("failed", profile, {"error": str(e) or type(e).__name__,
                                                     "pid": pid})
                return
            self._on_profile("applied", profile, {"pid": pid, "dep_id": dep_id,
                                                  "latency_s": time.monotonic() - t})

        threading.Thread(target=run, name="schedcp-apply", daemon=True).start()

    # -- history ---------------------------------------------------------------------------------
    def record_step(self, step: dict) -> None:
        """Keep an agent step (the loop's on_step records) so history can say why a deployment
        ran and what it measured. Appends one JSON line; the file is trimmed when it grows."""
        line = json.dumps(step, separators=(",", ":"), default=str)
        self.steps_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.steps_path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.steps_path.stat().st_size > 4 << 20:
            self._trim_steps()

    def _trim_steps(self) -> None:
        with self._lock:
            lines = self.steps_path.read_text(encoding="utf-8").splitlines()[-MAX_STEPS:]
            atomic_write(self.steps_path, "\n".join(lines) + "\n", 0o600)

    def _steps(self) -> list[dict]:
        try:
            lines = self.steps_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for raw in lines:
            try:
                step = json.loads(raw)
            except ValueError:
                continue
            if isinstance(step, dict):
                out.append(step)
        return out

    def _steps_by_deployment(self, steps: list[dict] | None = None) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for step in self._steps() if steps is None else steps:
            oc = step.get("outcome")
            if isinstance(oc, dict) and oc.get("deployment_id"):
                out[oc["deployment_id"]] = step
        return out

    @staticmethod
    def _local_rows(steps: list[dict]) -> list[dict]:
        """What never reached the helper but belongs in History (issue #18): analyses, trials
        the safety check refused, profiles that could not be applied."""
        out = []
        base = {"id": "", "kind": "", "tunables": {}, "ended": 0.0, "previous": "",
                "metrics": [], "before": None, "after": None, "improvement": None,
                "source": "agent", "reason": "", "why": "", "effect": ""}
        for s in steps:
            role, oc = s.get("role"), s.get("outcome")
            if role == "analysis":
                out.append({**base, "name": "", "state": "analyzed", "started": s.get("t", 0.0),
                            "app": s.get("app", ""), "goal": s.get("goal", ""),
                            "effect": s.get("verdict", ""), "why": s.get("next_step", "")})
            elif role == "execution" and isinstance(oc, dict) and not oc.get("deployment_id"):
                # refused by the safety check, or verified but never deployed (it failed)
                plan = oc.get("plan") if isinstance(oc.get("plan"), dict) else {}
                out.append({**base, "name": plan.get("policy", ""),
                            "tunables": plan.get("tunables") or {},
                            "state": "failed" if oc.get("verified") else "refused",
                            "started": s.get("t", 0.0), "app": s.get("app", ""),
                            "goal": s.get("goal", ""), "why": plan.get("rationale", ""),
                            "reason": str(oc.get("message") or oc.get("refused_at") or "")})
            elif role == "profile-failed":
                out.append({**base, "name": s.get("policy", ""), "state": "failed",
                            "started": s.get("t", 0.0), "app": s.get("app", ""),
                            "goal": s.get("goal", ""), "source": "profile",
                            "reason": s.get("error", "")})
        return out

    def history(self, limit: int = 50) -> list[dict]:
        """Deployments, newest last: what ran (name, kind, tunables), when, how it ended and
        why, and where the app knows it, why it was chosen and what it measured (the agent's
        step: rationale, before/after metrics, improvement) or which profile ran it."""
        all_steps = self._steps()
        local = self._local_rows(all_steps)[-limit:]
        deps: list[dict] = []
        if self.client is not None:
            try:
                deps = self.client.history(limit)
            except HelperError as e:
                self._notice(f"History unavailable: {e}")
        steps = self._steps_by_deployment(all_steps)
        out = []
        for d in deps:
            spec = d.get("spec") or {}
            item = {"id": d.get("id", ""), "name": spec.get("name", ""),
                    "kind": spec.get("kind", ""), "tunables": spec.get("tunables") or {},
                    "state": d.get("state", ""), "started": d.get("started", 0.0),
                    "ended": d.get("ended", 0.0), "reason": d.get("reason", ""),
                    "previous": (d.get("previous") or {}).get("name", ""),
                    "metrics": d.get("metrics") or [], "why": "", "effect": "",
                    "before": None, "after": None, "improvement": None, "app": "",
                    "source": "helper"}
            step = steps.get(item["id"])
            if step is not None:
                oc = step["outcome"]
                plan = oc.get("plan") or {}
                goal = step.get("goal") or self.settings.default_goal
                item.update(why=plan.get("rationale", ""), goal=goal, before=oc.get("before"),
                            after=oc.get("after"), improvement=step.get("improvement"),
                            effect=outcome_sentence(oc, goal), source="agent",
                            app=step.get("app", ""))
            with self._lock:
                ours = self._ours.get(item["id"])
            if ours is not None:
                item["app"] = item["app"] or ours.get("app", "")
                item["effect"] = item["effect"] or ours.get("effect", "")
                if ours.get("source") == "profile":
                    item["source"] = "profile"
                    item["why"] = item["why"] or f"profile for {ours.get('app', '')}"
            out.append(item)
        return out + local

    # -- the end -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop watching and close the helper connection: the helper reverts whatever we ran
        and did not keep."""
        self._disconnect()
        self.stop_neighbours()
        if self._own_notifier:
            self.notifier.close()
