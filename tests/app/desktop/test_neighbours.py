"""Working with the other tuners (issue 17), against the real programs Debian ships:
power-profiles-daemon on the test system bus (real polkitd: root may switch profiles) and
Feral's gamemoded on a private session bus. No stand-ins here."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from schedcp.desktop.neighbours import GameModeWatch, PowerProfileWatch, effective_goal
from schedcp.desktop.profiles import Profile, ProfileStore
from schedcp.desktop.profilewatch import ProfileManager
from tests.app.desktop.test_profile_watch import Client, Events
from tests.dbus_stack import wait_name

PPD = Path("/usr/libexec/power-profiles-daemon")
GAMEMODED = shutil.which("gamemoded") or "/usr/bin/gamemoded"
# gamemoded's own optimizations off: a test must not renice or touch CPU governors
GAMEMODE_INI = """[general]
renice=0
softrealtime=off
inhibit_screensaver=0
disable_splitlock=0
desiredgov=
defaultgov=
[cpu]
park_cores=no
pin_cores=no
"""


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_power_profile_sets_the_goal_unless_the_user_chose():
    assert effective_goal("balanced", False, "power-saver") == "battery"
    assert effective_goal("responsiveness", True, "power-saver") == "responsiveness"
    assert effective_goal("throughput", False, "performance") == "throughput"
    assert effective_goal("balanced", False, "") == "balanced"


@pytest.fixture
def ppd(stack):
    if not PPD.exists():
        pytest.fail("power-profiles-daemon is missing: packaging/setup-dev.sh installs it")
    p = subprocess.Popen([str(PPD)], env=stack.env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_name(stack.address, "net.hadess.PowerProfiles")
        yield stack
    finally:
        p.terminate()
        p.wait(10)


def set_profile(address: str, profile: str) -> None:
    r = subprocess.run(["dbus-send", f"--bus={address}", "--print-reply",
                        "--dest=net.hadess.PowerProfiles", "/net/hadess/PowerProfiles",
                        "org.freedesktop.DBus.Properties.Set", "string:net.hadess.PowerProfiles",
                        "string:ActiveProfile", f"variant:string:{profile}"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def test_a_real_power_profiles_daemon_change_reaches_the_goal(ppd):
    seen: list[str] = []
    w = PowerProfileWatch(seen.append, ppd.address).start()
    try:
        assert w.problem == "" and w.service == "net.hadess.PowerProfiles"
        assert w.profile == "balanced"  # ppd's start-up profile (placeholder driver)
        set_profile(ppd.address, "power-saver")
        wait_until(lambda: w.profile == "power-saver")
        assert seen[-1] == "power-saver"
        assert effective_goal("balanced", False, w.profile) == "battery"
        set_profile(ppd.address, "balanced")
        wait_until(lambda: w.profile == "balanced")
    finally:
        w.close()


def test_without_a_power_daemon_the_watch_says_so(stack):
    w = PowerProfileWatch(None, stack.address).start()
    try:
        assert w.profile == "" and "no power profile daemon" in w.problem
    finally:
        w.close()


@pytest.fixture
def gamemode(bus, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "gamemode.ini").write_text(GAMEMODE_INI)
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus, "XDG_CONFIG_HOME": str(cfg)}
    p = subprocess.Popen([GAMEMODED], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_name(bus, "com.feralinteractive.GameMode")
        yield bus
    finally:
        p.terminate()
        p.wait(10)


def gamemode_call(bus: str, member: str, pid: int) -> None:
    r = subprocess.run(["dbus-send", f"--bus={bus}", "--print-reply",
                        "--dest=com.feralinteractive.GameMode", "/com/feralinteractive/GameMode",
                        f"com.feralinteractive.GameMode.{member}", f"int32:{pid}"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and "int32 0" in r.stdout, (r.stdout, r.stderr)


def test_a_game_registering_with_gamemode_applies_its_profile_and_unregistering_ends_it(
        gamemode, tmp_path):
    """The real gamemoded: a game calls RegisterGame (as libgamemode does) → its per-app
    profile is applied at once; UnregisterGame → the previous scheduler comes back. The proc
    connector is not running here, so GameMode alone triggered it."""
    game = tmp_path / "mygame"
    shutil.copy(shutil.which("sleep"), game)
    store = ProfileStore(tmp_path / "p.json")
    store.put(Profile(f"exe:{game}", "mygame", "scx_simple"))
    ev, client = Events(), Client()
    m = ProfileManager(store, client, enabled=lambda: True, on_event=ev)
    games: list[tuple[str, int]] = []
    w = GameModeWatch(lambda kind, pid: (games.append((kind, pid)), m.game(kind, pid)),
                      gamemode).start()
    g = subprocess.Popen([str(game), "30"])
    other = subprocess.Popen(["sleep", "30"])
    try:
        assert w.problem == "" and not m.watching
        gamemode_call(gamemode, "RegisterGame", g.pid)
        _, info = ev.wait(lambda k, i: k == "applied")
        assert info["pid"] == g.pid and info["dep_id"] == "dep1"
        assert client.calls[0][:2] == ("switch", "scx_simple")
        gamemode_call(gamemode, "RegisterGame", other.pid)  # a game with no profile: nothing
        wait_until(lambda: ("started", other.pid) in games)
        gamemode_call(gamemode, "UnregisterGame", g.pid)
        ev.wait(lambda k, i: k == "restored" and i["dep_id"] == "dep1")
        assert client.calls[-1][:2] == ("revert", "dep1")
        assert [c[0] for c in client.calls] == ["switch", "revert"]
    finally:
        for p in (g, other):
            p.kill()
            p.wait()
        w.close()
        m.stop()


def test_the_sessions_goal_follows_the_power_profile_until_the_user_chooses(ppd, tmp_path):
    from schedcp.desktop.notify import Notifier
    from schedcp.desktop.session import DesktopSession
    from schedcp.desktop.settings import Settings

    settings = Settings()
    s = DesktopSession(lambda: Client(), settings, Notifier(""), ProfileStore(tmp_path / "p"),
                       steps_path=tmp_path / "steps.jsonl", watch_programs=False)
    events: list[tuple[str, dict]] = []
    s.add_listener(lambda k, i: events.append((k, i)))
    try:
        s.start_neighbours(ppd.address, "")
        assert s.goal == "balanced"
        set_profile(ppd.address, "power-saver")
        wait_until(lambda: s.goal == "battery")
        assert ("power", {"profile": "power-saver", "goal": "battery"}) in events
        settings.default_goal, settings.goal_chosen = "responsiveness", True
        assert s.goal == "responsiveness"  # the user's word wins
    finally:
        set_profile(ppd.address, "balanced")
        s.close()


def test_a_profile_says_once_whether_to_take_over_from_another_tool(tmp_path):
    """Per profile: leave another tool's scheduler (the default) or take over while the app
    runs; the choice travels as the helper's take_over option and survives a reload."""
    store = ProfileStore(tmp_path / "p.json")
    store.put(Profile("exe:/usr/games/leave", "leave", "scx_simple"))
    store.put(Profile("exe:/usr/games/take", "take", "scx_simple", take_over=True))
    client = Client()
    m = ProfileManager(store, client, enabled=lambda: True, on_event=Events())
    m.apply("exe:/usr/games/leave", os.getpid())
    m.apply("exe:/usr/games/take", os.getpid())
    assert [c[2] for c in client.calls] == [{"window_s": 30.0},
                                            {"window_s": 30.0, "take_over": True}]
    assert ProfileStore(tmp_path / "p.json").get("exe:/usr/games/take").take_over is True
    assert Profile("a", "a", "scx_simple", take_over="yes").problems() == [
        "take_over must be true or false"]
