"""The profile watcher costs nothing while it cannot matter: no proc-connector socket and no
thread while there are no profiles; the first profile saved opens it (and a profiled app
starting is caught), the last deleted closes it once no profiled app runs. Programs no profile
can match cost one readlink."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from schedcp.desktop import profilewatch as profiles_mod
from schedcp.desktop.procwatch import NETLINK_CONNECTOR
from schedcp.desktop.profiles import Profile, ProfileStore
from schedcp.desktop.profilewatch import ProfileManager


def connector_sockets() -> int:
    """Our open proc-connector sockets, from the kernel's own table (not our bookkeeping)."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            ours.add(link[8:-1])
    lines = Path("/proc/net/netlink").read_text().splitlines()[1:]
    return sum(1 for line in lines if int(line.split()[1]) == NETLINK_CONNECTOR
               and line.split()[-1] in ours)


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "schedcp-profiles"]


class Events:
    def __init__(self):
        self.items: list[tuple[str, dict]] = []
        self.cv = threading.Condition()

    def __call__(self, kind, profile, info):
        with self.cv:
            self.items.append((kind, {"app": profile.app_id, **info}))
            self.cv.notify_all()

    def wait(self, pred, timeout=10.0):
        with self.cv:
            ok = self.cv.wait_for(lambda: any(pred(k, i) for k, i in self.items), timeout)
            assert ok, f"no such event in {timeout} s: {self.items}"
            return next((k, i) for k, i in self.items if pred(k, i))


class Client:
    def __init__(self):
        self.calls: list[tuple] = []
        self.n = 0

    def list_schedulers(self):
        return [{"name": "scx_simple", "kind": "scx"}]

    def switch(self, name, tunables, canary):
        self.n += 1
        self.calls.append(("switch", name, canary))
        return f"dep{self.n}"

    def revert(self, dep_id, reason):
        self.calls.append(("revert", dep_id, reason))
        return "reverted"


def wait_until(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    p = tmp_path / "probe-app"
    shutil.copy(shutil.which("sleep"), p)
    return p


def test_closed_without_profiles_opened_by_the_first(tmp_path: Path, probe: Path):
    store = ProfileStore(tmp_path / "p.json")
    ev, client = Events(), Client()
    m = ProfileManager(store, client, enabled=lambda: True, on_event=ev)
    base = connector_sockets()
    app_id = f"exe:{probe}"
    m.start()
    try:
        assert not m.error and not m.watching
        assert connector_sockets() == base and watcher_threads() == []

        store.put(Profile(app_id, "probe-app", "scx_simple"))  # the first profile opens it
        assert m.watching and connector_sockets() == base + 1 and len(watcher_threads()) == 1
        a = subprocess.Popen([str(probe), "30"])
        try:
            _, info = ev.wait(lambda k, i: k == "applied")
            assert info["pid"] == a.pid and info["latency_s"] < 1.0, info
            store.delete(app_id)  # the app still runs: its exit must still restore
            assert m.watching
        finally:
            a.kill()
            a.wait()
        _, info = ev.wait(lambda k, i: k == "restored")
        assert info["dep_id"] == "dep1"
        wait_until(lambda: not m.watching)  # no profile, nothing running: closed
        wait_until(lambda: watcher_threads() == [])
        assert connector_sockets() == base

        # nothing listens now: a program of no (more) profile is not seen at all
        n = len(ev.items)
        b = subprocess.Popen([str(probe), "30"])
        time.sleep(0.3)
        b.kill()
        b.wait()
        assert len(ev.items) == n and m.running() == {}

        store.put(Profile(app_id, "probe-app", "scx_simple"))  # reopened, caught again
        c = subprocess.Popen([str(probe), "30"])
        try:
            _, info = ev.wait(lambda k, i: k == "applied" and i["pid"] == c.pid)
            assert info["dep_id"] == "dep2"
        finally:
            c.kill()
            c.wait()
        ev.wait(lambda k, i: k == "restored" and i["dep_id"] == "dep2")
        assert m.watching  # the profile is still there
        # the canary of a profile has no target_pids: the helper applies it at once
        assert [c[2] for c in client.calls if c[0] == "switch"] == [{"window_s": 30.0}] * 2
    finally:
        m.stop()
    assert not m.watching and connector_sockets() == base and watcher_threads() == []


def test_deleting_the_last_profile_closes_at_once(tmp_path: Path, probe: Path):
    store = ProfileStore(tmp_path / "p.json")
    store.put(Profile(f"exe:{probe}", "probe-app", "scx_simple", auto_apply=False))
    m = ProfileManager(store, None, enabled=lambda: True, on_event=lambda *a: None)
    base = connector_sockets()
    m.start()
    try:
        assert m.watching and connector_sockets() == base + 1
        store.delete(f"exe:{probe}")
        assert not m.watching and watcher_threads() == []  # joined: closed on return
        assert connector_sockets() == base
    finally:
        m.stop()


def test_unmatchable_programs_cost_one_readlink(tmp_path: Path, probe: Path, monkeypatch):
    """A shell (an interpreter) starting while only binary programs have profiles: no
    command line, no comm is read; a script profile makes interpreters worth a look."""
    reads: list[str] = []
    real_cmdline, real_comm = profiles_mod.proc.cmdline, profiles_mod.proc.comm
    monkeypatch.setattr(profiles_mod.proc, "cmdline",
                        lambda pid: reads.append("cmdline") or real_cmdline(pid))
    monkeypatch.setattr(profiles_mod.proc, "comm",
                        lambda pid: reads.append("comm") or real_comm(pid))
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\nsleep 30\n")
    store = ProfileStore(tmp_path / "p.json")
    store.put(Profile(f"exe:{probe}", "probe-app", "scx_simple"))
    store.put(Profile("wine:game.exe", "Game.exe", "scx_simple"))
    m = ProfileManager(store, None, enabled=lambda: True, on_event=lambda *a: None)
    sh = subprocess.Popen(["sh", str(script)])
    try:
        time.sleep(0.1)
        assert not m._candidate(sh.pid) and reads == []
        store.put(Profile(f"exe:{script}", "tool", "scx_simple"))
        assert m._candidate(sh.pid) and reads == ["cmdline"]
    finally:
        sh.kill()
        sh.wait()


def _switches(native_id: int) -> int:
    st = Path(f"/proc/self/task/{native_id}/status").read_text()
    return sum(int(line.split()[1]) for line in st.splitlines()
               if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))


def test_a_stream_of_programs_is_read_in_batches(tmp_path: Path, probe: Path):
    """300 unrelated programs starting as fast as they can (a build): the watcher wakes a few
    times a second, not once per exec; their exits never reach it; a profiled app starting
    at the end of the stream is still caught."""
    store = ProfileStore(tmp_path / "p.json")
    store.put(Profile(f"exe:{probe}", "probe-app", "scx_simple", auto_apply=False))
    ev = Events()
    m = ProfileManager(store, None, enabled=lambda: True, on_event=ev)
    m.start()
    try:
        (t,) = watcher_threads()
        clock = time.pthread_getcpuclockid(t.ident)
        s0, c0, t0 = _switches(t.native_id), time.clock_gettime(clock), time.monotonic()
        # from another process, as a build would (spawning here would contend for our GIL)
        subprocess.run(["sh", "-c", "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done"],
                       check=True)
        p = subprocess.Popen([str(probe), "30"])
        try:
            _, info = ev.wait(lambda k, i: k == "started")
            assert info["pid"] == p.pid
        finally:
            p.kill()
            p.wait()
        wall = time.monotonic() - t0
        wakeups = _switches(t.native_id) - s0
        cpu = time.clock_gettime(clock) - c0
        print(f"300 execs in {wall:.2f} s: {wakeups} watcher wake-ups, "
              f"{cpu / 300 * 1e6:.1f} us of its CPU per exec")
        # ~1 per coalesce_s (plus preemptions on a busy machine); one per exec would be 300+
        assert wakeups <= 30, wakeups
    finally:
        m.stop()
