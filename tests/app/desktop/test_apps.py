"""Application identity and the process to optimize, on real process trees shaped like Steam,
Proton and Wine launches (argv set with ``exec -a``; executables are copies of sleep named as
Wine's loaders are)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedcp.analysis import procfs
from schedcp.desktop.apps import app_root, descendants, identify, steam_app_id, windows_exe

SLEEP = shutil.which("sleep")


def _tree(script: str, expect: list[str], env: dict | None = None
          ) -> tuple[subprocess.Popen, list[int]]:
    """Run ``script`` (bash, a launcher); returns it and its descendants once processes with
    each of the ``expect`` argv[0]s exist."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("Steam", "STEAM"))}
    p = subprocess.Popen(["bash", "-c", script], env={**base, **(env or {})},
                         start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = descendants(p.pid)
        argv0s = [(procfs.cmdline(k) or [""])[0] for k in [p.pid, *kids]]
        if all(e in argv0s for e in expect):
            return p, kids
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    raise AssertionError(f"tree did not start: {[procfs.cmdline(k) for k in kids]}")


@pytest.fixture
def loaders(tmp_path: Path) -> Path:
    for name in ("wine64-preloader", "wineserver"):
        shutil.copy(SLEEP, tmp_path / name)
    game_dir = tmp_path / "steamapps" / "common" / "Dota"
    game_dir.mkdir(parents=True)
    shutil.copy(SLEEP, game_dir / "dota2")
    return tmp_path


def _by_argv0(pids: list[int], argv0: str) -> int:
    for p in pids:
        cmd = procfs.cmdline(p)
        if cmd and cmd[0] == argv0:
            return p
    raise AssertionError(f"no {argv0} among {[procfs.cmdline(p) for p in pids]}")


def test_proton_game_under_steam(loaders: Path):
    w = loaders
    game_argv0 = r"Z:\home\u\.steam\steamapps\common\Cyberpunk 2077\bin\x64\Cyberpunk2077.exe"
    services_argv0 = r"C:\windows\system32\services.exe"
    (w / "reaper").write_text(
        f"(exec -a python3 bash {w}/proton /steam/proton waitforexitandrun) & wait\n")
    (w / "proton").write_text(
        f"(exec -a wineserver {w}/wineserver 600) &\n"
        f"(exec -a '{services_argv0}' {w}/wine64-preloader 600) &\n"
        f"(exec -a \"$GAME\" {w}/wine64-preloader 600) &\nwait\n")
    script = (f"exec -a reaper bash {w}/reaper SteamLaunch AppId=1091500 -- /steam/proton "
              "waitforexitandrun")
    p, pids = _tree(script, ["reaper", "python3", "wineserver", services_argv0, game_argv0],
                    {"GAME": game_argv0})
    try:
        reaper = p.pid
        game = _by_argv0(pids, game_argv0)
        services = _by_argv0(pids, services_argv0)
        ident = identify(game)
        assert ident is not None
        assert ident.app_id == "steam:1091500"
        assert ident.name == "Cyberpunk2077.exe" and ident.kind == "game"
        assert ident.exe == str(w / "wine64-preloader")
        assert identify(services).kind == "app"  # Wine's own service, never "the game"
        assert identify(reaper).kind == "app"
        assert app_root(reaper) == game  # the launcher in front → the game below it
        proton = _by_argv0(pids, "python3")
        assert app_root(proton) == game
        assert app_root(game) == game
        assert steam_app_id(game) == "1091500"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_plain_wine_game_and_steam_native_game(loaders: Path):
    w = loaders
    script = f"""
(exec -a 'C:\\Program Files\\Foo\\FooGame.EXE' {w}/wine64-preloader 600) &
(SteamAppId=570 exec {w}/steamapps/common/Dota/dota2 600) &
(SteamAppId=0 exec -a plain {w}/wineserver 600) &
wait
"""
    p, pids = _tree(script, [r"C:\Program Files\Foo\FooGame.EXE", "plain",
                             f"{w}/steamapps/common/Dota/dota2"])
    try:
        wine = _by_argv0(pids, r"C:\Program Files\Foo\FooGame.EXE")
        ident = identify(wine)
        assert (ident.app_id, ident.name, ident.kind) == ("wine:foogame.exe", "FooGame.EXE",
                                                          "game")
        dota = next(x for x in pids if procfs.exe(x).endswith("/dota2"))
        ident = identify(dota)
        assert (ident.app_id, ident.name, ident.kind) == ("steam:570", "dota2", "game")
        plain = _by_argv0(pids, "plain")
        assert steam_app_id(plain) == ""  # SteamAppId=0 is Steam's "no game"
        # the launcher (bash) with two games below: the busiest one of the most common kind
        assert app_root(p.pid) in (wine, dota)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_native_programs_scripts_and_gone_processes(tmp_path: Path):
    script = tmp_path / "probe.py"
    script.write_text("import time\ntime.sleep(600)\n")
    py = os.path.realpath(sys.executable)
    s = subprocess.Popen([py, str(script)])
    z = subprocess.Popen([SLEEP, "600"])
    try:
        time.sleep(0.3)
        ident = identify(s.pid)
        assert ident.app_id == f"exe:{script}" and ident.name == "probe.py"
        assert ident.kind == "app" and ident.exe == str(script)
        ident = identify(z.pid)
        assert ident.app_id == f"exe:{os.path.realpath(SLEEP)}" and ident.name == "sleep"
        assert app_root(z.pid) == z.pid
        # the same program started again has the same identity (profiles key on it)
        z2 = subprocess.Popen([SLEEP, "601"])
        try:
            assert identify(z2.pid) == identify(z.pid)
        finally:
            z2.kill()
            z2.wait()
        # `python3 -c` has no script: the interpreter is the app
        c = subprocess.Popen([py, "-c", "import time; time.sleep(600)"])
        try:
            time.sleep(0.2)
            assert identify(c.pid).app_id == f"exe:{os.path.realpath(py)}"
        finally:
            c.kill()
            c.wait()
    finally:
        for x in (s, z):
            x.kill()
            x.wait()
    assert identify(z.pid) is None  # gone
    assert identify(2**22 + 7) is None


def test_windows_exe_parsing():
    assert windows_exe([r"C:\a b\Game.exe", "-x"]) == "Game.exe"
    assert windows_exe(["/usr/bin/wine64", r"Z:\g\setup.EXE"]) == "setup.EXE"
    assert windows_exe(["foo"], comm="Cyberpunk2077.e") == ""
    assert windows_exe([], comm="game.exe") == "game.exe"
