"""Deployment with a canary and a circuit breaker, and the last-known-good to go back to.

sched_ext runs one scheduler at a time, so a deployment stops whatever runs, starts the new one
and watches it for a canary window. The breaker trips — and the previous kept scheduler (or the
kernel default) comes back — when sched_ext ejects the scheduler, its loader dies, a target
task's runqueue wait grows past its baseline, or the caller reports a regression. Kept
deployments persist in the state folder and come back after a helper restart.

Safety does not rest on this module alone: our BPF schedulers hang on a link fd this process
holds, and packaged ones are children that die with us, so if the helper dies the kernel falls
back to its default scheduler by itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from .atomic import write_atomic
from .canary import Watch, reported_regression, wait_baseline
from .errors import HelperError, InvalidArgs, NotFound, SuspendedError
from .records import (
    CanaryParams,
    Deployment,
    Spec,
    deployment_from_json,
    spec_from_json,
)
from .scxstate import last_seq, read_state
from .states import State

HISTORY_LIMIT = 200
STATE_VERSION = 1
MAX_STATE_BYTES = 4 * 1024 * 1024
log = logging.getLogger(__name__)


class DeployError(HelperError):
    """The deployment could not start; nothing changed or the previous state was restored."""


class Suspended(DeployError, SuspendedError):
    """The kernel ejected this scheduler earlier: it waits for the user's word (``resume``)."""


class NotRunning(DeployError, NotFound):
    """The deployment named is not on record, or is not the one running."""


class NoHints(DeployError, InvalidArgs):
    """The running scheduler takes no runtime hints."""


class Running(Protocol):
    ops: str

    def alive(self) -> bool: ...

    def stop(self) -> None: ...


Launcher = Callable[[Spec], Running]
Listener = Callable[[str, Deployment], None]


def spec_key(spec: Spec) -> str:
    """One scheduler configuration: kind, name, artifact and tunables."""
    return json.dumps([spec.kind, spec.name, spec.artifact, sorted(spec.tunables.items())])


class Suspensions:
    """Schedulers the kernel ejected (a stall, a runtime error, scx_bpf_error): not deployed
    again, by anyone or anything automatic, until the user resumes them. Ejection loops
    ("watchdog ejects, the loader restarts it, repeat") end here. ``suspended.json``."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / "suspended.json"
        try:
            raw = json.loads(self.path.read_text())
            self.entries: dict[str, dict] = {str(k): dict(v) for k, v in raw.items()
                                             if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError):
            self.entries = {}

    def get(self, spec: Spec) -> dict | None:
        return self.entries.get(spec_key(spec))

    def add(self, spec: Spec, reason: str) -> None:
        self.entries[spec_key(spec)] = {"kind": spec.kind, "name": spec.name,
                                        "reason": reason, "since": time.time()}
        self._save()

    def lift(self, spec: Spec) -> bool:
        if self.entries.pop(spec_key(spec), None) is None:
            return False
        self._save()
        return True

    def _save(self) -> None:
        try:
            write_atomic(self.path, json.dumps(self.entries))
        except OSError as e:  # kept in memory: the suspension holds until the helper restarts
            log.warning("could not record the suspensions: %s", e)


class Store:
    """``state.json`` in the state folder, written atomically (write, fsync, rename)."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / "state.json"
        state_dir.mkdir(parents=True, exist_ok=True)

    def load(self) -> tuple[Spec | None, list[Deployment]]:
        """The kept spec and the history; a file of the wrong shape or version is set aside with
        a logged warning (never a crash at start-up, never dropped silently)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None, []
        except OSError as e:
            return self._set_aside(f"unreadable: {e}")
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_STATE_BYTES + 1)
        if len(raw) > MAX_STATE_BYTES:
            return self._set_aside(f"larger than {MAX_STATE_BYTES} bytes")
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"not a version {STATE_VERSION} state document")
            kept = spec_from_json(data["kept"]) if data.get("kept") is not None else None
            history = data.get("history", [])
            if not isinstance(history, list):
                raise ValueError("history is not a list")
        except (ValueError, KeyError, TypeError) as e:
            return self._set_aside(str(e)[:200])
        good = []
        for d in history[-HISTORY_LIMIT:]:
            try:
                good.append(deployment_from_json(d))
            except (ValueError, KeyError, TypeError) as e:
                log.warning("state.json: dropping a malformed history entry: %s", e)
        return kept, good

    def _set_aside(self, why: str) -> tuple[None, list]:
        bad = self.path.with_suffix(f".corrupt-{int(time.time())}")
        with contextlib.suppress(OSError):
            self.path.rename(bad)
        log.warning("state.json %s; set aside as %s, starting from the kernel default",
                    why, bad.name)
        return None, []

    def save(self, kept: Spec | None, history: list[Deployment]) -> None:
        data = {"version": STATE_VERSION, "kept": asdict(kept) if kept else None,
                "history": [d.to_dict() for d in history[-HISTORY_LIMIT:]]}
        write_atomic(self.path, json.dumps(data))  # on a full disk the previous file stays


class Deployer:
    def __init__(self, state_dir: Path, launch: Launcher, listener: Listener | None = None):
        self.store = Store(state_dir)
        self.launch = launch
        self.listener = listener or (lambda kind, dep: None)
        self.kept, self.history = self.store.load()
        self.suspended = Suspensions(state_dir)
        self._eject_error = ""  # the kernel's words when the last ejection was its fault
        self.current: Deployment | None = None
        self.running: Running | None = None
        self._lock = threading.RLock()
        self._stop_watch = threading.Event()
        self._watcher: threading.Thread | None = None
        self._reports: list[tuple[float, float, bool]] = []
        self._paused = False
        self._canary = CanaryParams()

    # -- queries -------------------------------------------------------------------------------
    def status(self) -> dict:
        with self._lock:
            st = read_state()
            return {
                "supported": st.supported, "state": st.state, "ops": st.ops,
                "current": self.current.to_dict() if self.current else None,
                "last_known_good": asdict(self.kept) if self.kept else None,
                "output": self._output(),
                "suspended": list(self.suspended.entries.values()),
            }

    def _output(self, limit: int = 4000) -> str:
        """The last ``limit`` characters the running scheduler printed (scx_* children; our
        BPF policies print nothing). Untrusted text: shown, never interpreted."""
        try:
            out = getattr(self.running, "output", "") if self.running is not None else ""
        except Exception:  # a child that just died: no output rather than no status
            return ""
        return str(out or "")[-limit:]

    def find(self, dep_id: str) -> Deployment:
        with self._lock:
            for d in reversed(self.history):
                if d.id == dep_id:
                    return d
        raise NotRunning(f"no deployment {dep_id!r}")

    # -- actions -------------------------------------------------------------------------------
    def deploy(self, spec: Spec, canary: CanaryParams, uid: int, owner: str = "",
               resume: bool = False) -> Deployment:
        """Replace what runs with ``spec`` and start the canary; on failure restore the previous.
        A suspended (ejected) scheduler needs ``resume``: the user's word that it may run."""
        with self._lock:
            held = self.suspended.get(spec)
            if held and not resume:
                raise Suspended(f"{spec.name} is suspended: {held['reason']}; resume it to "
                                "run it again")
            if held:
                self.suspended.lift(spec)
            self._end_current(State.REPLACED, "replaced by a new deployment")
            dep = Deployment(id=secrets.token_hex(6), spec=spec, uid=uid, owner=owner,
                             started=time.time(), previous=self.kept)
            baseline = wait_baseline(canary)
            seq = last_seq()
            try:
                self.running = self.launch(spec)
            except Exception as e:
                dep.state, dep.ended, dep.reason = State.FAILED, time.time(), str(e)
                self._restore(self.kept, "restored after a failed deployment")
                self.history.append(dep)
                with contextlib.suppress(OSError):
                    self._save()
                self.listener("failed", dep)
                raise DeployError(f"could not start {spec.name}: {e}") from e
            dep.ops, dep.via = self.running.ops, getattr(self.running, "via", "")
            self.current = dep
            self.history.append(dep)
            self._reports = []
            self._canary = canary
            try:  # all or nothing: recorded and guarded, or the previous state is back
                self._save()
            except OSError as e:
                self._end_current(State.FAILED, f"could not record the deployment: {e}")
                self._restore(self.kept, "restored after a deployment could not be recorded")
                with contextlib.suppress(OSError):
                    self._save()
                self.listener("failed", dep)
                raise DeployError(f"could not record the deployment of {spec.name} ({e}); "
                                  "the previous scheduler is back") from e
            self._start_watch(dep, canary, baseline, seq)
        self.listener("deployed", dep)
        return dep

    def report(self, dep_id: str, value: float, baseline: float, higher_is_better: bool) -> None:
        """A caller-measured metric for the canary (e.g. the target's throughput)."""
        with self._lock:
            if not self.current or self.current.id != dep_id:
                raise NotRunning(f"deployment {dep_id!r} is not the one running")
            dep = self.current
            dep.metrics.append({"t": time.time(), "value": value, "baseline": baseline})
            self._reports.append((value, baseline, higher_is_better))
            # past the canary window nobody watches the reports any more: judge them here
            reason = (reported_regression(self._reports, self._canary)
                      if dep.state == State.PASSED else None)
        if reason is not None:
            self._trip(dep, reason)

    def update_hints(self, dep_id: str, hints: dict[int, int]) -> int:
        """Expected runtimes for jobs that started after the deployment (tgid → ns, 0 =
        forget): a batch's jobs get their pids only when the batch runs."""
        self._hint(dep_id, "update_hints", hints)
        return len(hints)

    def expect_forks(self, dep_id: str, parent: int, runtimes: list[int]) -> int:
        """Hints for children not yet born (by birth order), so a batch started right after
        this call is ranked from its jobs' first slice."""
        self._hint(dep_id, "expect_forks", parent, runtimes)
        return len(runtimes)

    def _hint(self, dep_id: str, how: str, *args) -> None:
        """Pass hints to the running scheduler, if it is ``dep_id`` and takes them."""
        with self._lock:
            if not self.current or self.current.id != dep_id or self.running is None:
                raise NotRunning(f"deployment {dep_id!r} is not the one running")
            feed = getattr(self.running, how, None)
            if feed is None:
                raise NoHints(f"{self.current.spec.name} takes no runtime hints")
            try:
                feed(*args)
            except NoHints:  # the scheduler lacks the hint maps
                raise
            except Exception as e:
                raise DeployError(str(e)) from None

    def keep(self, dep_id: str) -> Deployment:
        with self._lock:
            dep = self.current
            if not dep or dep.id != dep_id:
                raise NotRunning(f"deployment {dep_id!r} is not the one running")
            before = (dep.state, dep.owner, self.kept)
            dep.state, dep.owner = State.KEPT, ""  # the watcher stays on as an ejection guard
            self.kept = dep.spec
            try:
                self._save()
            except OSError as e:  # not recorded: not kept (the canary and the hold go on)
                dep.state, dep.owner, self.kept = before
                raise DeployError(f"could not record the keep ({e}); it still runs on its "
                                  "canary") from e
        self.listener("kept", dep)
        return dep

    def kept_owner(self, dep_id: str | None = None) -> int | None:
        """The uid whose kept choice a revert would end (None: it ends nothing kept). A kept
        scheduler with no kept deployment on record counts as root's."""
        with self._lock:
            dep = self.current
            if dep is not None and (not dep_id or dep.id == dep_id):
                return dep.uid if dep.state == State.KEPT else None
            if dep_id or self.kept is None:
                return None
            for d in reversed(self.history):
                if d.state == State.KEPT and d.spec == self.kept:
                    return d.uid
            return 0

    def revert(self, reason: str = "requested", dep_id: str | None = None) -> Deployment | None:
        """Stop what runs and bring back the last-known-good (or the kernel default)."""
        with self._lock:
            dep = self.current
            if dep is None or (dep_id and dep.id != dep_id):
                if dep_id:
                    raise NotRunning(f"deployment {dep_id!r} is not the one running")
                self._stop_running()
                self.kept = None  # an explicit revert with nothing on canary: back to default
                self._save()
                return None
            self._revert_locked(dep, reason)
        self.listener("reverted", dep)
        return dep

    def _revert_locked(self, dep: Deployment, reason: str) -> None:
        if dep.state == State.KEPT:  # reverting a kept one falls back to what it replaced
            self.kept = dep.previous
        self._end_current(State.REVERTED, reason)
        self._restore(self.kept, f"restored after {dep.id} was reverted")
        try:
            self._save()
        except OSError as e:  # the safe direction happened; only its record is missing
            log.warning("could not record the revert of %s: %s", dep.id, e)

    def _trip(self, dep: Deployment, reason: str, even_kept: bool = False) -> None:
        """The breaker: revert ``dep`` unless it was kept, replaced or reverted meanwhile
        (checked and done under one lock hold, so a racing keep or deploy wins cleanly).
        ``even_kept``: the kernel ejected it, so it is gone whatever the user said."""
        with self._lock:
            if self.current is not dep or (dep.state == State.KEPT and not even_kept):
                return
            if even_kept and self._eject_error:
                self.suspended.add(dep.spec, self._eject_error)
            if reason.startswith("replaced by "):  # another tool took it: do not fight back
                self._end_current(State.REPLACED, reason)
                with contextlib.suppress(OSError):
                    self._save()
                kind = "replaced"
            else:
                self._revert_locked(dep, reason)
                kind = "reverted"
        self.listener(kind, dep)

    @contextlib.contextmanager
    def paused(self):
        """Step the running scheduler aside for a while and bring it back after. Needed only
        where a verifier trial must run in this very kernel (inside the throwaway guest):
        sched_ext runs one scheduler at a time. The breaker ignores the gap."""
        with self._lock:
            spec = self.current.spec if self.current else (self.kept if self.running else None)
            if spec is None or self.running is None:
                spec = None
            else:
                self._paused = True
                self._stop_running()
        try:
            yield
        finally:
            if spec is not None:
                with self._lock:
                    try:
                        self.running = self.launch(spec)
                        if self.current is not None:
                            self.current.ops = self.running.ops
                    finally:
                        self._paused = False

    def owner_vanished(self, owner: str) -> None:
        """The client holding an unkept deployment left: revert (power-profiles-daemon's hold)."""
        with self._lock:
            dep = self.current
            if dep is None or dep.owner != owner or dep.state == State.KEPT:
                return
        self._trip(dep, f"the client that deployed it ({owner}) went away before keeping it")

    def recover(self) -> Spec | None:
        """After a restart: the kernel fell back when we died; bring back the kept scheduler."""
        with self._lock:
            for d in self.history:
                if d.state in (State.CANARY, State.PASSED):
                    d.state, d.ended = State.REVERTED, d.ended or time.time()
                    d.reason = d.reason or "the helper restarted before it was kept"
            self._restore(self.kept, "restored at helper start")
            try:
                self._save()
            except OSError as e:  # what runs is guarded either way; say it was not recorded
                log.warning("could not record the state after restart: %s", e)
            return self.kept

    def shutdown(self) -> None:
        with self._lock:
            self._stop_watch.set()
            self._stop_running()

    # -- internals -----------------------------------------------------------------------------
    def _save(self) -> None:
        self.store.save(self.kept, self.history)

    def _stop_running(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            running.stop()

    def _end_current(self, state: State, reason: str) -> None:
        self._stop_watch.set()
        if self.current is not None:
            dep, self.current = self.current, None
            if dep.state != State.KEPT or state == State.REVERTED:
                dep.state = state
            dep.ended, dep.reason = time.time(), reason
        self._stop_running()

    def _restore(self, spec: Spec | None, reason: str = "") -> None:
        if spec is None:
            return
        held = self.suspended.get(spec)
        if held:  # never bring back, by ourselves, what the kernel ejected
            self.history.append(Deployment(
                id=secrets.token_hex(6), spec=spec, uid=0, state=State.FAILED, started=time.time(),
                ended=time.time(), reason=f"not restored: suspended ({held['reason']})"))
            return
        try:
            self.running = self.launch(spec)
        except Exception as e:  # the kernel default is the floor: record and stay there
            self.kept = None
            self.history.append(Deployment(
                id=secrets.token_hex(6), spec=spec, uid=0, state=State.FAILED, started=time.time(),
                ended=time.time(), reason=f"could not restore the last-known-good: {e}"))
            return
        if reason:  # restored as the current kept deployment, under the same ejection guard
            owner = self.kept_owner()
            dep = Deployment(id=secrets.token_hex(6), spec=spec, uid=owner or 0, state=State.KEPT,
                             ops=self.running.ops, started=time.time(), reason=reason,
                             via=getattr(self.running, "via", ""))
            self.current = dep
            self.history.append(dep)
            self._start_watch(dep, CanaryParams(window_s=0.0), {}, last_seq())

    def _start_watch(self, dep: Deployment, canary: CanaryParams, baseline: dict[int, float],
                     seq: int | None) -> None:
        watch = Watch(self, dep, canary, baseline, seq)
        self._stop_watch, self._watcher = watch.stop, watch.thread
        watch.thread.start()
