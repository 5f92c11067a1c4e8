"""Offscreen Qt for this folder's widget tests (the real-tray test runs its own xcb process)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from tests.app.tray.fakes import FakeForeground, FakeSecrets, FakeSession, Ident


@pytest.fixture
def settings_path(tmp_path):
    return tmp_path / "config" / "settings.json"


@pytest.fixture
def settings(settings_path):
    from schedcp.desktop.settings import Settings

    return Settings.load(settings_path)


@pytest.fixture
def store(tmp_path):
    from schedcp.desktop.profiles import ProfileStore

    return ProfileStore(tmp_path / "profiles.json")


@pytest.fixture
def policies():
    from schedcp_common.policy import default_policies_dir, load_policies

    return load_policies(default_policies_dir())


@pytest.fixture
def session():
    return FakeSession()


@pytest.fixture
def tray(qtbot, session, settings, settings_path, store, policies):
    from schedcp.tray.app import TrayApp

    fg = FakeForeground((Ident("exe:/usr/bin/firefox", "Firefox", "/usr/bin/firefox"), 4242))
    t = TrayApp(session, settings, store, foreground=fg, settings_path=settings_path,
                policies=lambda: policies, app_root=lambda pid: pid + 1,
                secrets=FakeSecrets())
    yield t
    for w in list(t.windows.values()):
        w.close()
    if t.optimize_dialog is not None:
        t.optimize_dialog.cancel()
        t.optimize_dialog.wait(5)
    t.tray.hide()
    t.menu.deleteLater()
