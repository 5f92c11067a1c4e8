"""Per-app profiles: "when this app runs, run that scheduler", applied when the app starts
(exec events from the kernel's proc connector, no polling) and undone when its last process
exits, which brings back whatever ran before (the helper's last-known-good).

A profile deploys a known policy: a packaged scx_* one through Switch (no verification), one of
ours through VerifyPolicy + Deploy. The deployment is held by the client connection, as any
unkept one: if the tray dies, the helper reverts it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..analysis import procfs as proc
from ..vocabulary import DEFAULT_GOAL
from .apps import INTERPRETERS, WINE_LOADERS, identify
from .procwatch import ProcChange, ProcWatch
from .settings import GOALS, atomic_write, data_dir

log = logging.getLogger("schedcp.desktop.profiles")
POLICY_RE = re.compile(r"^[a-z0-9_]{1,48}$")
TUNABLE_RE = re.compile(r"^[a-z0-9_]{1,48}$")
MAX_PROFILES = 500


@dataclass
class Profile:
    app_id: str
    name: str
    policy: str
    tunables: dict[str, int | bool | str] = field(default_factory=dict)
    goal: str = DEFAULT_GOAL
    auto_apply: bool = True
    # another tool's scheduler attached (scx_loader, scx.service): stop it while this app runs
    # and give it back after (False: leave it, and say the profile could not apply)
    take_over: bool = False
    enabled: bool = True  # off: kept, but neither applied nor offered when the app starts

    @property
    def when(self) -> str:
        """The one per-profile choice: "auto" (apply when the app starts), "ask" or "off"."""
        return "off" if not self.enabled else ("auto" if self.auto_apply else "ask")

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.app_id, str) or not self.app_id or len(self.app_id) > 4096:
            out.append("app_id must be a non-empty string")
        if not isinstance(self.name, str) or len(self.name) > 256:
            out.append("name must be a string of at most 256 characters")
        if not isinstance(self.policy, str) or not POLICY_RE.match(self.policy):
            out.append(f"policy must be a policy name ([a-z0-9_]+), not {self.policy!r}")
        if not isinstance(self.tunables, dict):
            out.append("tunables must be a mapping")
        else:
            for k, v in self.tunables.items():
                if not isinstance(k, str) or not TUNABLE_RE.match(k):
                    out.append(f"tunable name {k!r} is not [a-z0-9_]+")
                elif not isinstance(v, (int, bool, str)) or (isinstance(v, str) and len(v) > 256):
                    out.append(f"tunable {k} must be an integer, true/false or a short string")
        if self.goal not in GOALS:
            out.append(f"goal must be one of {', '.join(GOALS)}, not {self.goal!r}")
        if not isinstance(self.auto_apply, bool):
            out.append("auto_apply must be true or false")
        if not isinstance(self.take_over, bool):
            out.append("take_over must be true or false")
        if not isinstance(self.enabled, bool):
            out.append("enabled must be true or false")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        known = {k: d[k] for k in ("app_id", "name", "policy", "tunables", "goal", "auto_apply",
                                   "take_over", "enabled") if k in d}
        return cls(**known)


class ProfileStore:
    """``profiles.json`` in the data folder. Written atomically; a file that cannot be read as
    profiles is moved aside (``profiles.json.bad-<time>``, for the user to look at) and the
    store starts empty, rather than refusing to start or silently overwriting it."""

    def __init__(self, path: Path | None = None):
        self.path = path or data_dir() / "profiles.json"
        self._lock = threading.RLock()
        self._items: dict[str, Profile] = {}
        self.set_aside: Path | None = None  # where a bad file went, if one did
        self.version = 0  # bumped on every change (the watcher caches what it matches)
        self._listeners: list[Callable[[], None]] = []
        self._load()

    def add_listener(self, cb: Callable[[], None]) -> None:
        """``cb()`` after every change (from the thread that made it)."""
        self._listeners.append(cb)

    def remove_listener(self, cb: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(cb)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            try:
                cb()
            except Exception:
                log.exception("profile store listener failed")

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as e:
            log.warning("cannot read %s: %s", self.path, e)
            return
        try:
            data = json.loads(text)
            raw = data["profiles"] if isinstance(data, dict) else None
            if not isinstance(raw, list):
                raise ValueError("no profiles list")
            items = {}
            for d in raw:
                p = Profile.from_dict(d)
                if p.problems():
                    raise ValueError(f"{p.app_id}: {'; '.join(p.problems())}")
                items[p.app_id] = p
        except (ValueError, TypeError, KeyError) as e:
            aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
                self.set_aside = aside
            log.warning("%s is not a profiles file (%s); set aside as %s", self.path, e, aside)
            return
        self._items = items

    def _save(self) -> None:
        data = {"version": 1, "profiles": [asdict(p) for p in self._items.values()]}
        atomic_write(self.path, json.dumps(data, indent=1) + "\n")

    def list(self) -> list[Profile]:
        with self._lock:
            return sorted(self._items.values(), key=lambda p: p.name.lower())

    def get(self, app_id: str) -> Profile | None:
        with self._lock:
            return self._items.get(app_id)

    def put(self, p: Profile) -> None:
        """Add or replace; ValueError says what is wrong with the profile."""
        problems = p.problems()
        if problems:
            raise ValueError("; ".join(problems))
        with self._lock:
            if p.app_id not in self._items and len(self._items) >= MAX_PROFILES:
                raise ValueError(f"at most {MAX_PROFILES} profiles")
            self._items[p.app_id] = Profile.from_dict(asdict(p))  # a copy: callers may mutate
            self.version += 1
            self._save()
        self._changed()

    def delete(self, app_id: str) -> None:
        with self._lock:
            if self._items.pop(app_id, None) is None:
                return
            self.version += 1
            self._save()
        self._changed()

    def count(self) -> int:
        return len(self._items)


@dataclass
class _Running:
    """A profiled app that runs now: its processes and the deployment made for it."""

    profile: Profile
    pids: set[int] = field(default_factory=set)
    dep_id: str = ""
    started: float = 0.0  # monotonic


@dataclass
class _Watch:
    """One opening of the proc connector and the thread reading it (a new one each time the
    watcher reopens, so a closing one never races the next)."""

    procwatch: ProcWatch
    stop_r: socket.socket
    stop_w: socket.socket
    thread: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def signal_stop(self) -> None:
        with contextlib.suppress(OSError):  # already closed by its thread: it has stopped
            self.stop_w.send(b"x")


def _alive(pid: int) -> bool:
    f = proc.stat_fields(pid)
    return bool(f) and f[0] not in ("Z", "X")


def _maybe_script(path: str) -> bool:
    """Whether an exe profile could be matched through an interpreter's argument: anything
    but an ELF binary (unreadable counts as maybe)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) != b"\x7fELF"
    except OSError:
        return True


class ProfileManager:
    """Watches exec/exit events in its own thread and applies profiles.

    ``on_event(kind, profile, info)``: "started" ({pid}: a profiled app started and was not
    applied automatically), "applied" ({pid, dep_id, latency_s: exec event → helper answered}),
    "restored" ({dep_id}: its last process exited and its deployment was reverted), "failed"
    ({error}). Called from the watcher thread (or the caller of ``apply``).

    The watcher costs nothing while it cannot matter: the proc connector is open only while
    there is a profile, or a profiled app still runs (its exit restores the previous
    scheduler); the store tells us when the first profile is saved or the last deleted. While
    open, the kernel delivers every exec but only the exits of the profiled apps' processes,
    an exec of a program no profile can match costs one readlink, and while programs keep
    starting (a build) their events are read in batches, at most 1/coalesce_s wake-ups a
    second. A profile saved while its app already runs applies from the app's next start.
    """

    def __init__(self, store: ProfileStore, client, *, enabled: Callable[[], bool],
                 on_event: Callable[[str, Profile, dict], None]):
        self.store = store
        self.client = client
        self.enabled = enabled
        self.on_event = on_event
        self.canary_s = 30.0
        self.coalesce_s = 0.1  # while programs keep starting, read their events this often
        self._lock = threading.RLock()
        self._running: dict[str, _Running] = {}
        self._tracked: frozenset[int] = frozenset()  # the pids in _running (read lock-free)
        self._kinds: dict[str, str] = {}  # policy name → "bpf" | "scx"
        self._started = False
        self._watch: _Watch | None = None
        self._watch_lock = threading.Lock()  # opening and closing the watcher
        self._keys_cache: tuple[int, tuple] | None = None
        self.error = ""  # why the watcher could not start, if it could not

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def watching(self) -> bool:
        """Whether the proc connector is open now."""
        return self._watch is not None

    def start(self) -> None:
        """Start following the store; open the watcher if there is a profile (profiled apps
        running already count as started now). Errors are known when this returns."""
        if self._started:
            return
        self._started = True
        self.store.add_listener(self._sync)
        self._sync(scan=True)
        if self._watch is None and not self.error:
            try:  # nothing to watch yet: check now that it could be, for the caller to tell
                with ProcWatch():
                    pass
            except OSError as e:
                self._cannot_watch(e)

    def stop(self) -> None:
        """Stop watching; deployments made for running apps stay until they exit or the
        connection closes (the helper reverts unkept ones then)."""
        self._started = False
        self.store.remove_listener(self._sync)
        with self._watch_lock:
            w, self._watch = self._watch, None
        if w is not None:
            self._end(w)

    def _cannot_watch(self, e: OSError) -> None:
        self.error = f"cannot watch program starts (proc connector): {e}"
        log.warning(self.error)

    def _needed(self) -> bool:
        return self._started and (self.store.count() > 0 or bool(self._tracked))

    def _sync(self, scan: bool = False) -> None:
        """Open the watcher when it is needed and close it when not (the store's listener:
        called from whichever thread changed a profile, and by the watcher itself)."""
        with self._watch_lock:
            old, new = self._watch, None
            if self._needed() == (old is not None):
                return
            if old is not None:
                self._watch = None
            else:
                # opened here, not in the thread: errors are known when this returns
                try:
                    pw = ProcWatch(exit_pids=self._tracked)
                    pw.open()
                except OSError as e:  # no proc connector, or not allowed to listen to it
                    self._cannot_watch(e)
                    return
                self.error = ""
                new = self._watch = _Watch(pw, *socket.socketpair())
                with self._lock:  # a pid tracked meanwhile (_refilter saw no watcher yet)
                    if self._tracked != pw.exit_pids:
                        pw.watch_exits(self._tracked)
                new.thread = threading.Thread(target=self._run, args=(new, scan),
                                              name="schedcp-profiles", daemon=True)
                new.thread.start()
        if old is not None:
            self._end(old)
        elif new is not None:
            new.ready.wait(10)  # the scan of running apps (outside the lock: it may apply)

    @staticmethod
    def _end(w: _Watch) -> None:
        w.signal_stop()
        if w.thread is not None and w.thread is not threading.current_thread():
            w.thread.join(5)

    def running(self) -> dict[str, tuple[set[int], str]]:
        """app_id → (pids, deployment id or "") of profiled apps that run now."""
        with self._lock:
            return {k: (set(r.pids), r.dep_id) for k, r in self._running.items()}

    # -- the watcher thread -------------------------------------------------------------------
    def _run(self, w: _Watch, scan: bool) -> None:
        try:
            if scan:
                self._scan_existing()
            w.ready.set()
            fd, stop = w.procwatch.fileno(), w.stop_r.fileno()
            dropped, waiting_since = 0, 0.0
            while True:
                ready, _, _ = select.select([fd, stop], [], [])
                if stop in ready:
                    return
                streaming = time.monotonic() - waiting_since < self.coalesce_s
                for ev in w.procwatch.read():
                    try:
                        self._on_proc_event(ev)
                    except Exception:  # one bad event must not end the watching
                        log.exception("profile event handling failed")
                if w.procwatch.dropped != dropped:  # the kernel dropped events: look again
                    dropped = w.procwatch.dropped
                    self._resync()
                # A program starting after a quiet spell is handled at once; while programs
                # keep starting (a build), their events queue for coalesce_s and are read in
                # one go: at most 1/coalesce_s wake-ups a second instead of one per event.
                if streaming and select.select([stop], [], [], self.coalesce_s)[0]:
                    return
                waiting_since = time.monotonic()
        finally:
            w.procwatch.close()
            w.stop_r.close()
            w.stop_w.close()
            w.ready.set()

    def _resync(self) -> None:
        """After lost events: forget tracked processes that have gone, catch profiled apps
        that started unseen."""
        log.warning("program start/exit events were lost; rescanning running programs")
        for pid in self._tracked:
            if not _alive(pid):
                self._forget_pid(pid)
        self._scan_existing()

    def _scan_existing(self) -> None:
        """Profiled apps that ran before we started count as started now."""
        if not self.store.count():
            return
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                self._consider(int(entry), time.monotonic(), scanned=True)

    def _keys(self) -> tuple[set[str], set[str], set[str], bool, bool]:
        """What the profiles match on: exe paths, those of them that may be scripts, comms,
        and whether any is a Windows game (wine:/steam:) or a Steam game; rebuilt only when
        the store changed."""
        if self._keys_cache is None or self._keys_cache[0] != self.store.version:
            exes, scripts, comms, windows, steam = set(), set(), set(), False, False
            for p in self.store.list():
                kind, _, key = p.app_id.partition(":")
                if kind == "exe":
                    exes.add(key)
                    if _maybe_script(key):
                        scripts.add(key)
                elif kind == "comm":
                    comms.add(key)
                windows |= kind in ("wine", "steam")
                steam |= kind == "steam"
            self._keys_cache = (self.store.version, (exes, scripts, comms, windows, steam))
        return self._keys_cache[1]

    def _candidate(self, pid: int) -> bool:
        """A cheap test before identify() reads more of /proc: a build execs thousands of
        times, and most programs have no profile. For those it costs one readlink, plus a
        read of the command line only for an interpreter when a profile is a script, or for
        a Wine loader or Steam game when a profile is a Windows game."""
        exes, scripts, comms, windows, steam = self._keys()
        if not (exes or comms or windows):
            return False
        exe = proc.exe(pid)
        if exe in exes:
            return True
        base = exe.rpartition("/")[2]
        if scripts and INTERPRETERS.match(base) and any(
                a in scripts for a in proc.cmdline(pid)[1:3]):  # a script run by an interpreter
            return True
        if comms and proc.comm(pid) in comms:
            return True
        steam_game = steam and "/steamapps/" in exe  # a native Steam game
        if windows and (WINE_LOADERS.match(base) or steam_game):
            head = proc.cmdline(pid)[:3]
            if (any(".exe" in a.lower() for a in head)
                    or proc.comm(pid).lower().endswith(".exe")):
                return True
        return steam_game

    def _on_proc_event(self, ev: ProcChange) -> None:
        if ev.kind == "exec" and self._candidate(ev.pid):
            # the kernel's CLOCK_MONOTONIC stamp: latency_s includes the time it was queued
            self._consider(ev.pid, ev.timestamp_ns / 1e9 if ev.timestamp_ns else time.monotonic())
        elif ev.pid in self._tracked:  # it exited, or exec'd a program of no profile
            self._forget_pid(ev.pid)

    def _consider(self, pid: int, t: float, scanned: bool = False) -> None:
        ident = identify(pid)
        if ident is None:
            return
        profile = self.store.get(ident.app_id)
        if profile is None:
            return
        with self._lock:
            run = self._running.get(profile.app_id)
            first = run is None
            if first:
                run = self._running[profile.app_id] = _Running(profile, started=t)
            run.pids.add(pid)
        self._refilter()
        if not first:
            return
        if not profile.enabled:  # the person turned this profile off: nothing happens
            return
        if self.enabled() and profile.auto_apply:
            try:
                dep_id = self.apply(profile.app_id, pid)
            except Exception as e:
                self._emit("failed", profile, {"error": _message(e), "pid": pid})
                return
            self._emit("applied", profile, {"pid": pid, "dep_id": dep_id,
                                            "latency_s": time.monotonic() - t,
                                            "scanned": scanned})
        else:
            self._emit("started", profile, {"pid": pid})

    def _refilter(self) -> None:
        """Let the kernel deliver the exits of exactly the processes we track, then forget
        any that exited before the new filter was in place (their exit was dropped)."""
        with self._lock:
            pids = frozenset(p for r in self._running.values() for p in r.pids)
            added = pids - self._tracked
            changed = pids != self._tracked
            self._tracked = pids
            w = self._watch
        if changed and w is not None:
            try:
                w.procwatch.watch_exits(pids)
            except OSError as e:  # closing meanwhile
                log.debug("exit filter: %s", e)
        for pid in added:
            if not _alive(pid):
                self._forget_pid(pid)

    def _forget_pid(self, pid: int) -> None:
        emptied = None
        with self._lock:
            for app_id, run in list(self._running.items()):
                if pid in run.pids:
                    run.pids.discard(pid)
                    if not run.pids:
                        emptied = self._running.pop(app_id)
                    break
            else:
                return
        self._refilter()
        if emptied is not None and emptied.dep_id:
            self._restore(emptied)
        self._sync()  # the last profile may be gone, and with this app nothing left to watch

    def _restore(self, run: _Running) -> None:
        from ..client import HelperError

        reason = f"{run.profile.name} exited"
        try:
            self.client.revert(run.dep_id, reason)
        except HelperError as e:
            if "not the one running" in e.message:  # replaced or reverted meanwhile: fine
                return
            self._emit("failed", run.profile, {"error": _message(e), "dep_id": run.dep_id})
            return
        self._emit("restored", run.profile, {"dep_id": run.dep_id})

    def game(self, kind: str, pid: int) -> None:
        """GameMode's GameRegistered/GameUnregistered: the game's profile applies at once
        (whatever the exec events said), and ends when the game unregisters."""
        if kind == "started" and _alive(pid):
            if pid not in self._tracked:
                self._consider(pid, time.monotonic())
        elif kind == "stopped" and pid in self._tracked:
            self._forget_pid(pid)

    def forget_deployment(self, dep_id: str) -> None:
        """The deployment ended some other way (reverted from a notification, by the breaker,
        replaced): nothing to restore when the app exits."""
        with self._lock:
            for run in self._running.values():
                if run.dep_id == dep_id:
                    run.dep_id = ""

    # -- applying -------------------------------------------------------------------------------
    def _kind(self, policy: str) -> str:
        if policy not in self._kinds:
            for s in self.client.list_schedulers():
                self._kinds[s["name"]] = s.get("kind", "")
        kind = self._kinds.get(policy)
        if kind is None:
            raise ValueError(f"the helper knows no scheduler named {policy!r}")
        return kind

    def apply(self, app_id: str, pid: int) -> str:
        """Deploy the profile of ``app_id`` for process ``pid`` now; returns the deployment id.
        Raises the helper's error (or ValueError for an unknown profile/policy)."""
        profile = self.store.get(app_id)
        if profile is None:
            raise ValueError(f"no profile for {app_id}")
        if self.client is None:
            raise ValueError("the SchedCP helper is not connected")
        # No "target_pids": with them the helper first samples the target's runqueue wait
        # under the previous scheduler for up to 1 s before switching (a baseline for the
        # canary's wait check). A profile is a scheduler the user already kept for this app,
        # so it is applied at once; a baseline of a program that has just exec'd would mean
        # little anyway. The canary still watches for ejection and stalls.
        canary: dict = {"window_s": self.canary_s}
        if profile.take_over:
            canary["take_over"] = True
        if self._kind(profile.policy) == "scx":
            dep_id = self.client.switch(profile.policy, profile.tunables, canary)
        else:
            report = self.client.verify_policy(profile.policy, profile.tunables)
            if not report.get("ok"):
                raise ValueError(f"{profile.policy} did not pass verification: "
                                 f"{report.get('message') or report.get('refused_at')}")
            dep_id = self.client.deploy(report["token"], canary)
        with self._lock:
            run = self._running.setdefault(app_id, _Running(profile, started=time.monotonic()))
            run.pids.add(pid)
            run.dep_id = dep_id
        self._refilter()
        return dep_id

    def _emit(self, kind: str, profile: Profile, info: dict) -> None:
        try:
            self.on_event(kind, profile, info)
        except Exception:
            log.exception("profile event callback failed")


def _message(e: BaseException) -> str:
    """One sentence for a notification: the helper's message with its hint."""
    return str(e) or type(e).__name__
