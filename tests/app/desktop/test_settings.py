"""Settings file, profile store (bad input, atomic writes), autostart entry, and the API key in
a real Secret Service (gnome-keyring on a private session bus)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from schedcp.desktop import settings as st
from schedcp.desktop.profiles import Profile, ProfileStore
from schedcp.desktop.settings import SecretsUnavailable, Settings
from tests.desktop_stack import secret_service, session_bus


def test_settings_roundtrip_and_file_mode(tmp_path: Path):
    path = tmp_path / "cfg" / "settings.json"
    s = Settings(default_goal="throughput", brain="claude", model="claude-x", budget_usd=2,
                 auto_apply_profiles=True, start_at_login=True)
    s.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings.load(path) == Settings("throughput", "claude", "claude-x", 2.0, True, True)
    assert not list(path.parent.glob(".settings.json.*"))  # no temp file left behind


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"x"', "\x00\xff"])
def test_settings_broken_file_gives_defaults(tmp_path: Path, text: str):
    path = tmp_path / "settings.json"
    path.write_text(text, errors="surrogateescape")
    assert Settings.load(path) == Settings()


def test_settings_bad_values_fall_back_one_by_one(tmp_path: Path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"default_goal": "speed", "brain": "claude", "budget_usd": -1,
                                "model": "", "auto_apply_profiles": "yes",
                                "start_at_login": True, "unknown": 1, "local_url": "x",
                                "local_model": "qwen3:8b", "budget_tokens": "many"}))
    s = Settings.load(path)
    assert s == Settings(brain="claude", start_at_login=True, local_model="qwen3:8b")
    assert Settings.load(tmp_path / "missing.json") == Settings()


@pytest.mark.parametrize("field,value,words", [
    ("default_goal", "fast", "default_goal must be one of"),
    ("brain", "gpt", "brain must be one of"),
    ("budget_usd", 0, "budget_usd must be a number above 0"),
    ("budget_usd", float("nan"), "budget_usd"),
    ("budget_usd", 1000.0, "at most 100"),
    ("budget_usd", True, "budget_usd"),
    ("model", " ", "model must be"),
    ("auto_apply_profiles", 1, "auto_apply_profiles must be true or false"),
    ("brain", "gpt", "one of offline, claude, openai"),
    ("local_url", "localhost:11434", "local_url must be an http"),
    ("local_url", "http://a b", "local_url"),
    ("local_model", 7, "local_model must be a model name"),
    ("budget_tokens", 10, "budget_tokens must be a whole number from 1000"),
    ("budget_tokens", 2.5e6, "budget_tokens"),
])
def test_settings_save_refuses_bad_values(tmp_path: Path, field, value, words):
    s = Settings(**{field: value})
    with pytest.raises(ValueError, match=words):
        s.save(tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()


def test_settings_default_path_honours_xdg(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    Settings(default_goal="battery").save()
    assert (tmp_path / "xdg" / "schedcp" / "settings.json").is_file()
    assert Settings.load().default_goal == "battery"


def test_autostart_entry(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "none"))
    path = st.set_autostart(True)
    assert path == tmp_path / "autostart" / "schedcp-tray.desktop"
    text = path.read_text()
    assert "[Desktop Entry]" in text and "Type=Application" in text
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert "schedcp-tray" in exec_line or "schedcp.tray.app" in exec_line
    assert st.set_autostart(False) == path and not path.exists()
    st.set_autostart(False)  # idempotent


def test_autostart_off_overrides_the_packaged_entry(tmp_path: Path, monkeypatch):
    """The .deb installs /etc/xdg/autostart/schedcp-tray.desktop: "off" must hide it."""
    system = tmp_path / "etc-xdg"
    (system / "autostart").mkdir(parents=True)
    (system / "autostart" / "schedcp-tray.desktop").write_text(
        "[Desktop Entry]\nType=Application\nExec=schedcp-tray\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"/nonexistent:{system}")
    path = st.set_autostart(False)
    assert "Hidden=true" in path.read_text().splitlines()
    path = st.set_autostart(True)
    assert "Hidden=true" not in path.read_text()


# -- profiles -----------------------------------------------------------------------------------
def test_profile_store_roundtrip(tmp_path: Path):
    path = tmp_path / "data" / "profiles.json"
    s = ProfileStore(path)
    assert s.list() == []
    p = Profile("exe:/usr/bin/foo", "foo", "scx_simple", {"slice_us": 5000, "x": True},
                "responsiveness")
    s.put(p)
    p.policy = "mutated"  # the store keeps its own copy
    s.put(Profile("wine:game.exe", "Game.exe", "vtime"))
    again = ProfileStore(path)
    assert [x.app_id for x in again.list()] == ["exe:/usr/bin/foo", "wine:game.exe"]
    assert again.get("exe:/usr/bin/foo").policy == "scx_simple"
    assert again.get("exe:/usr/bin/foo").tunables == {"slice_us": 5000, "x": True}
    again.delete("exe:/usr/bin/foo")
    again.delete("nothing")  # no error
    assert [x.app_id for x in ProfileStore(path).list()] == ["wine:game.exe"]


@pytest.mark.parametrize("bad,words", [
    (dict(app_id=""), "app_id"),
    (dict(policy="Bad Name"), "policy must be"),
    (dict(policy="../x"), "policy must be"),
    (dict(goal="fast"), "goal must be"),
    (dict(tunables={"Slice": 1}), "tunable name"),
    (dict(tunables={"slice_us": 1.5}), "tunable slice_us"),
    (dict(tunables={"slice_us": [1]}), "tunable slice_us"),
    (dict(auto_apply="yes"), "auto_apply"),
])
def test_profile_store_refuses_bad_profiles(tmp_path: Path, bad, words):
    s = ProfileStore(tmp_path / "p.json")
    p = Profile(**{"app_id": "exe:/bin/x", "name": "x", "policy": "vtime", **bad})
    with pytest.raises(ValueError, match=words):
        s.put(p)
    assert s.list() == [] and not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("text", ["{", "[]", '{"profiles": 3}',
                                  '{"profiles": [{"app_id": "x"}]}',
                                  '{"profiles": [{"app_id": "x", "name": "x", "policy": "A"}]}'])
def test_profile_store_bad_file_is_set_aside(tmp_path: Path, text: str):
    path = tmp_path / "profiles.json"
    path.write_text(text)
    s = ProfileStore(path)
    assert s.list() == []
    assert s.set_aside is not None and s.set_aside.read_text() == text
    assert not path.exists()
    s.put(Profile("exe:/bin/x", "x", "vtime"))  # and the store works on
    assert ProfileStore(path).get("exe:/bin/x") is not None


# -- the API key in a real Secret Service --------------------------------------------------------
@pytest.fixture
def no_keyring_config(tmp_path: Path, monkeypatch):
    """A private HOME/XDG so keyring's own config and data never come from the real user."""
    for k in ("PYTHON_KEYRING_BACKEND", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # its bus is gone
    st.redetect_keyring()  # forget whatever backend the test's environment chose


def test_api_key_in_gnome_keyring(tmp_path: Path, monkeypatch, no_keyring_config):
    import time

    with session_bus() as bus, secret_service(bus, tmp_path / "home") as env:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        ok, how = st.secrets_status()
        assert ok, how
        t0 = time.monotonic()
        st.set_api_key("sk-ant-test-123 ")
        assert st.get_api_key() == "sk-ant-test-123"
        elapsed = time.monotonic() - t0
        # the CLI (cli.agent) reads the same entry
        from schedcp.cli.agent import _api_key

        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        assert _api_key() == "sk-ant-test-123"
        # stored in the keyring's own files, never in our config
        assert not any("sk-ant-test-123" in p.read_text(errors="ignore")
                       for p in (tmp_path / "home").rglob("*.json"))
        st.set_api_key(None)
        assert st.get_api_key() is None
        st.set_api_key(None)  # deleting nothing is fine
        print(f"\nkeyring store + read back: {elapsed * 1000:.0f} ms")


def test_api_key_without_secret_service(tmp_path: Path, monkeypatch, no_keyring_config):
    with session_bus() as bus:  # a session bus, but nobody offers org.freedesktop.secrets
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
        assert st.get_api_key() is None
        ok, how = st.secrets_status()
        assert not ok and "gnome-keyring" in how
        with pytest.raises(SecretsUnavailable, match="ANTHROPIC_API_KEY"):
            st.set_api_key("sk-x")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    with pytest.raises(SecretsUnavailable):
        st.set_api_key("sk-x")
    assert os.environ.get("HOME", "").startswith(str(tmp_path))
