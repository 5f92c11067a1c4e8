"""The scripted walk-through (issue #18): every enabled menu and submenu item of the real tray
clicked in each helper state on the real desktop stack (Xvfb, openbox, trayer, dunst), every
window it opens saved as a screenshot (tests/app/tray/walkthrough.py does the clicking). With
SCHEDCP_WALKTHROUGH=DIR the screenshots are kept there; `make screenshots` copies the README's
from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from tests.app.tray.test_tray_x11 import desktop_background
from tests.desktop_stack import (
    notification_daemon,
    secret_service,
    session_bus,
    tray_host,
    x_client,
    xdotool,
)
from tests.desktop_stack import xserver as x_server

ROOT = Path(__file__).resolve().parents[3]
KEEP = os.environ.get("SCHEDCP_WALKTHROUGH")


def not_blank(path: Path) -> bool:
    img = QImage(str(path))
    if img.isNull() or img.width() < 40 or img.height() < 20:
        return False
    colours = {img.pixel(x, y) for x in range(0, img.width(), max(1, img.width() // 23))
               for y in range(0, img.height(), max(1, img.height() // 17))}
    return len(colours) > 3


def walk(state: str, stack, tmp_path: Path) -> tuple[dict, Path]:
    shots = Path(KEEP) if KEEP else tmp_path / "shots"
    with x_server() as display, tray_host(display), session_bus() as bus, \
            notification_daemon(display, bus), \
            secret_service(bus, tmp_path / "home") as keyring_env, \
            x_client(display, "SuperTuxKart") as (_pid, win):
        xdotool(display, "windowactivate", "--sync", str(win))
        desktop_background(display)
        system_bus = (stack.address if state == "unsupported" else
                      f"unix:path={tmp_path}/no-helper-here")
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
               "DBUS_SYSTEM_BUS_ADDRESS": system_bus, "DBUS_SESSION_BUS_ADDRESS": bus,
               "XDG_CONFIG_HOME": str(tmp_path / "config"),
               "XDG_DATA_HOME": str(tmp_path / "data"), **keyring_env}
        out = tmp_path / f"{state}.json"
        r = subprocess.run([sys.executable, "-m", "tests.app.tray.walkthrough", state, str(out),
                            str(shots)], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(out.read_text()), shots


def clicked(m: dict, *path: str) -> dict:
    return next(c for c in m["clicks"] if c["path"][:len(path)] == list(path))


def check_common(m: dict, shots: Path) -> None:
    menu = clicked(m, "menu")["items"]
    # every enabled item was clicked, and each click is in the manifest
    paths = [" / ".join(c["path"]) for c in m["clicks"]]
    for item in menu:
        assert any(p == item or p.startswith(item + " / ") for p in paths), (item, paths)
    for c in m["clicks"]:
        if c["shot"]:
            assert not_blank(shots / c["shot"]), c
    assert clicked(m, "Quit")["result"] == "quit"
    goal = clicked(m, next(t for t in menu if t.startswith("Goal")))
    assert goal["tooltips_visible"] and all(goal["tooltips"][1:]), goal
    assert goal["items"][0] == "For the next optimization:"
    assert "History…" in menu and "Settings…" in menu


def test_walkthrough_unsupported(stack, tmp_path):
    m, shots = walk("unsupported", stack, tmp_path)
    check_common(m, shots)
    assert m["tray_state"] == "unavailable"
    menu = clicked(m, "menu")["items"]
    assert menu[:3] == ["Scheduler switching unavailable",
                        f"No sched_ext in this kernel (Linux {os.uname().release})",
                        "What is missing and how to fix it…"]
    missing = clicked(m, "What is missing and how to fix it…")
    assert "schedcp demo" in missing["text"] and "CONFIG_SCHED_CLASS_EXT" in missing["text"]
    analyze = clicked(m, "Analyze “SuperTuxKart”")  # the window's title, not "python3"
    assert "an interactive app" in analyze["text"] and "waits for a CPU" in analyze["text"]
    history = clicked(m, "History…")
    assert "analysis only" in history["text"]  # the analysis is kept (with no deployment)
    profiles = clicked(m, "Profiles")
    assert "Apply profiles automatically" in profiles["items"]


def test_walkthrough_no_helper(stack, tmp_path):
    m, shots = walk("no-helper", stack, tmp_path)
    check_common(m, shots)
    missing = next(c for c in m["clicks"] if c["path"][0].startswith("What is missing"))
    assert "sudo apt install schedcp-helper" in missing["text"]


def test_walkthrough_refused(stack, tmp_path):
    m, shots = walk("refused", stack, tmp_path)
    check_common(m, shots)
    missing = next(c for c in m["clicks"] if c["path"][0].startswith("What is missing"))
    assert "polkit refused" in missing["text"]


def test_walkthrough_supported(stack, tmp_path):
    m, shots = walk("supported", stack, tmp_path)
    check_common(m, shots)
    assert m["tray_state"] == "optimized"
    optimize = clicked(m, "Optimize “SuperTuxKart”")
    assert "35 % less" in optimize["text"]
    assert clicked(m, "notification")["shot"]
    undo = clicked(m, "Undo: back to the previous scheduler")
    assert undo["result"] == "no window"  # it acts; the notification and icon say so
    history = clicked(m, "History…")
    assert "undone: after its trial, the app had to wait fo" in history["text"]  # no pid
    details = clicked(m, "History…", "Details")
    assert "slice_us=3000" in details["text"] or "Tunables" in details["text"]


@pytest.fixture(autouse=True)
def _no_session_bus(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
