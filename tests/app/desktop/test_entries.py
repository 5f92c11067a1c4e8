"""Apps are named by their .desktop entry, else their window title (issue #18 item 8)."""

from __future__ import annotations

import shutil
import subprocess

from schedcp.desktop import entries
from schedcp.desktop.apps import AppIdentity, identify, named


def test_desktop_entry_names_and_marks_games(tmp_path, monkeypatch):
    apps = tmp_path / "share" / "applications"
    apps.mkdir(parents=True)
    sleep = shutil.which("sleep")
    (apps / "kart.desktop").write_text(
        "[Desktop Entry]\nType=Application\nName=SuperTuxKart\nIcon=supertuxkart\n"
        f"Exec=env FOO=1 {sleep} %U\nCategories=Game;ArcadeGame;\n"
        "[Desktop Action new]\nName=Not this one\n")
    (apps / "hidden.desktop").write_text(
        "[Desktop Entry]\nType=Application\nName=Hidden\nExec=true\nNoDisplay=true\n")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path / "none"))
    entries.forget()
    try:
        found = entries.lookup(sleep)
        assert found == entries.DesktopApp("SuperTuxKart", "supertuxkart", True)
        assert entries.lookup("/usr/bin/true") is None  # NoDisplay entries are not apps
        p = subprocess.Popen([sleep, "30"])
        try:
            ident = identify(p.pid)
            assert (ident.name, ident.kind) == ("SuperTuxKart", "game")
            assert named(ident, "some window title") == ident  # a known name stays
        finally:
            p.kill()
            p.wait()
    finally:
        entries.forget()


def test_window_title_replaces_a_program_file_name():
    script = AppIdentity("exe:/opt/games/mygame.py", "mygame.py", "/opt/games/mygame.py", "app")
    assert named(script, "  My   Game  ").name == "My Game"
    assert named(script, "") == script
    wine = AppIdentity("wine:game.exe", "Game.exe", "/usr/bin/wine", "game")
    assert named(wine, "Title") == wine
