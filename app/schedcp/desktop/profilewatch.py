"""Per-app profiles applied: when a profiled app starts (exec events from the kernel's proc
connector, no polling) its scheduler is deployed, and when its last process exits it is undone,
which brings back whatever ran before (the helper's last-known-good).

A profile deploys a known policy: a packaged scx_* one through Switch (no verification), one of
ours through VerifyPolicy + Deploy. The deployment is held by the client connection, as any
unkept one: if the tray dies, the helper reverts it. The profiles themselves and their file are
:mod:`schedcp.desktop.profiles`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..analysis import procfs as proc
from .apps import INTERPRETERS, WINE_LOADERS, identify
from .procwatch import ProcChange, ProcWatch
from .profiles import Profile, ProfileStore

log = logging.getLogger("schedcp.desktop.profiles")  # the name logs always had


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
