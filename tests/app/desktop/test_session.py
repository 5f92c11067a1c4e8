"""DesktopSession against the real helper on the real private system bus (the ``stack``
fixture), real exec events from the proc connector and a real dunst. On the host the helper
has no sched_ext: the session must say so, and a profile's apply must fail with a message a
person can act on."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from schedcp.client import HelperClient
from schedcp.desktop.notify import Notifier
from schedcp.desktop.profiles import Profile, ProfileStore
from schedcp.desktop.profilewatch import ProfileManager
from schedcp.desktop.session import DesktopSession
from schedcp.desktop.settings import Settings


class Events:
    def __init__(self):
        self.items: list[tuple[str, dict]] = []
        self.cv = threading.Condition()

    def __call__(self, kind, info):
        with self.cv:
            self.items.append((kind, info))
            self.cv.notify_all()

    def wait(self, pred, timeout=15.0):
        with self.cv:
            ok = self.cv.wait_for(lambda: any(pred(k, i) for k, i in self.items), timeout)
            assert ok, f"no such event in {timeout} s: {self.items}"
            return next((k, i) for k, i in self.items if pred(k, i))


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    p = tmp_path / "probe-app"
    shutil.copy(shutil.which("sleep"), p)
    return p


def test_no_helper_explains_and_stays_usable(tmp_path: Path, bus, dunst):
    ev = Events()
    n = Notifier(bus)
    s = DesktopSession(lambda: HelperClient(f"unix:path={tmp_path}/none"), Settings(),
                       n, ProfileStore(tmp_path / "p.json"),
                       steps_path=tmp_path / "steps.jsonl", watch_programs=False)
    s.add_listener(ev)
    s.connect()
    assert s.state == "unavailable"
    assert "helper is not installed or not running" in s.problem
    assert "sudo apt install schedcp-helper" in s.problem  # an install command (issue #18)
    ev.wait(lambda k, i: k == "state" and i["state"] == "unavailable")
    assert s.history() == []
    s.revert()  # no exception: a notice instead
    ev.wait(lambda k, i: k == "notice")
    s.close()
    n.close()


def test_host_without_sched_ext_profile_fails_clearly(stack, tmp_path: Path, bus, dunst, probe):
    ev = Events()
    store = ProfileStore(tmp_path / "profiles.json")
    store.put(Profile(f"exe:{probe}", "probe-app", "scx_simple", {}, "responsiveness"))
    settings = Settings(auto_apply_profiles=True)
    n = Notifier(bus)
    s = DesktopSession(lambda: HelperClient(stack.address), settings, n, store,
                       steps_path=tmp_path / "steps.jsonl")
    s.add_listener(ev)
    s.connect()
    try:
        assert s.state == "unavailable" and "sched_ext" in s.problem, (s.state, s.problem)
        assert s.client is not None and s.profiles is not None and not s.profiles.error
        assert isinstance(s.history(), list)  # reading history works without sched_ext

        # issue #18: switching is unavailable, so nothing is tried and nothing is offered —
        # neither with auto-apply on (it used to fail after a long check) nor off (it used to
        # ask "apply its profile?" and then fail); the app starting is noted, not prompted
        for auto in (True, False):
            settings.auto_apply_profiles = auto
            time.sleep(0.2)  # the previous exit is processed
            p = subprocess.Popen([str(probe), "30"])
            try:
                _, info = ev.wait(lambda k, i, pid=p.pid: k == "profile"
                                  and i["kind"] == "not-offered" and i["pid"] == pid)
                assert info["app_id"] == f"exe:{probe}" and "sched_ext" in info["problem"]
                time.sleep(0.5)
                assert not [i for k, i in ev.items if k == "profile"
                            and i["kind"] in ("started", "failed", "applied")], ev.items
                assert not [x for x in dunst.shown if "probe-app" in x.summary]
            finally:
                p.kill()
                p.wait()
        # an unrelated program is not identified at all (cheap filter)
        subprocess.run(["true"], check=True)
    finally:
        s.close()
        n.close()
    assert not [t for t in threading.enumerate() if t.name == "schedcp-profiles"]


def test_profile_manager_tracks_processes_and_restores(tmp_path: Path, probe):
    """The watcher with a stand-in client (the helper's side is tested above and in the VM):
    two processes of one app → one apply; the deployment is reverted when the last exits."""

    class Client:
        def __init__(self):
            self.calls: list[tuple] = []

        def list_schedulers(self):
            return [{"name": "scx_simple", "kind": "scx"}]

        def switch(self, name, tunables, canary):
            self.calls.append(("switch", name, tunables, canary))
            return "abc123"

        def revert(self, dep_id, reason):
            self.calls.append(("revert", dep_id, reason))
            return "reverted"

    store = ProfileStore(tmp_path / "p.json")
    store.put(Profile(f"exe:{probe}", "probe-app", "scx_simple", {"slice_us": 3000}))
    ev = Events()
    client = Client()
    m = ProfileManager(store, client, enabled=lambda: True,
                       on_event=lambda k, p, i: ev(k, {"app": p.app_id, **i}))
    m.start()
    try:
        a = subprocess.Popen([str(probe), "30"])
        _, info = ev.wait(lambda k, i: k == "applied")
        assert info["pid"] == a.pid and info["dep_id"] == "abc123"
        assert info["latency_s"] < 1.0, info
        b = subprocess.Popen([str(probe), "30"])
        deadline = time.monotonic() + 5
        while b.pid not in m.running().get(f"exe:{probe}", (set(), ""))[0]:
            assert time.monotonic() < deadline, m.running()
            time.sleep(0.02)
        a.kill()
        a.wait()
        time.sleep(0.3)
        assert not any(k == "restored" for k, _ in ev.items)  # b still runs
        b.kill()
        b.wait()
        _, info = ev.wait(lambda k, i: k == "restored")
        assert info["dep_id"] == "abc123"
        # no target_pids: the helper would first sample a baseline for up to 1 s
        assert client.calls == [("switch", "scx_simple", {"slice_us": 3000}, {"window_s": 30.0}),
                                ("revert", "abc123", "probe-app exited")]
        assert m.running() == {}
    finally:
        m.stop()


def test_profile_manager_picks_up_an_app_already_running(tmp_path: Path, probe):
    p = subprocess.Popen([str(probe), "30"])
    try:
        time.sleep(0.2)
        store = ProfileStore(tmp_path / "p.json")
        store.put(Profile(f"exe:{probe}", "probe-app", "scx_simple", auto_apply=False))
        ev = Events()
        m = ProfileManager(store, None, enabled=lambda: True,
                           on_event=lambda k, pr, i: ev(k, i))
        m.start()
        try:
            _, info = ev.wait(lambda k, i: k == "started")  # auto_apply off for this profile
            assert info["pid"] == p.pid
            with pytest.raises(ValueError, match="not connected"):
                m.apply(f"exe:{probe}", p.pid)
        finally:
            m.stop()
    finally:
        p.kill()
        p.wait()


DENIED = r'''
import json
from pathlib import Path
from schedcp.client import HelperClient
from schedcp.desktop.notify import Notifier
from schedcp.desktop.profiles import ProfileStore
from schedcp.desktop.session import DesktopSession
from schedcp.desktop.settings import Settings
s = DesktopSession(HelperClient, Settings(), Notifier(""), ProfileStore(Path("/nonexistent/p")),
                   steps_path=Path("/nonexistent/s"), watch_programs=False)
s.connect()
print(json.dumps({"state": s.state, "problem": s.problem}))
s.close()
'''


def test_polkit_denied_explains(stack):
    """A user polkit refuses (the stack's rules deny schedcp-no everything): the session says
    so and how to fix it. Runs as that user from the test users' venv."""
    import json
    import os

    from tests.dbus_stack import USER_NO, USER_ROOT

    env = {"DBUS_SYSTEM_BUS_ADDRESS": stack.address, "PYTHONPATH": str(USER_ROOT / "lib"),
           "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    r = subprocess.run([runuser, "-u", USER_NO, "--", "env",
                        *(f"{k}={v}" for k, v in env.items()), str(stack.python), "-c", DENIED],
                       capture_output=True, text=True, timeout=60, cwd="/",
                       env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["state"] == "unavailable"
    assert "polkit refused" in out["problem"] and "administrator" in out["problem"]
