"""The real tray icon: Xvfb + openbox + trayer (XEmbed tray), the helper on the real private
system bus of the ``stack`` fixture (on this host it answers "no sched_ext"), a foreground
window of another process, and real xdotool clicks on the icon and the menu. The tray runs in
its own process with Qt on xcb (this test session's Qt is offscreen)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.desktop_stack import (
    notification_daemon,
    secret_service,
    session_bus,
    tray_host,
    x_client,
    xdotool,
    xserver,
)

ROOT = Path(__file__).resolve().parents[3]
SHOTS = os.environ.get("SCHEDCP_SCREENSHOTS")  # a folder: also save screenshots there


def desktop_background(display: str, rgb: int = 0x3B4A5C) -> None:
    """A plain slate desktop instead of Xvfb's black, for the screenshots."""
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    root = d.screen().root
    root.change_attributes(background_pixel=rgb)
    root.clear_area()
    d.sync()
    d.close()


def test_real_tray_menu_with_real_clicks(stack, tmp_path):
    from schedcp.desktop.apps import identify

    t0 = time.monotonic()
    with xserver() as display, tray_host(display), session_bus() as bus, \
            notification_daemon(display, bus) as nd, \
            secret_service(bus, tmp_path / "home") as keyring_env, \
            x_client(display, "Probe") as (probe_pid, probe_win):
        xdotool(display, "windowactivate", "--sync", str(probe_win))
        if SHOTS:
            desktop_background(display)
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
               "DBUS_SYSTEM_BUS_ADDRESS": stack.address, "DBUS_SESSION_BUS_ADDRESS": bus,
               "XDG_CONFIG_HOME": str(tmp_path / "config"),
               "XDG_DATA_HOME": str(tmp_path / "data"), **keyring_env}
        out = tmp_path / "result.json"
        argv = [sys.executable, "-m", "tests.app.tray.x11_driver", str(out)]
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            argv.append(SHOTS)
        p = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            assert line.startswith("NOTIFIED "), (line, p.stderr.read()[-3000:])
            nid = int(line.split()[1])
            shown = nd.wait_for(lambda n: n.id == nid, 10)
            if SHOTS:
                time.sleep(0.5)
                subprocess.run(["import", "-display", display, "-window", "root", "-crop",
                                "360x130+664+30", str(Path(SHOTS) / "notification.png")],
                               check=True, timeout=30)
            revert_s = nd.invoke(nid, "revert")
            _, stderr = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, stderr[-3000:]
        res = json.loads(out.read_text())
        program = identify(probe_pid).name
    assert shown.summary == "vtime now runs for Firefox"
    assert shown.body.startswith("input latency (p99) 2 ms \u2192 1.3 ms, 35 % lower")
    assert "slice_us" not in shown.summary + shown.body  # tunables: History's details
    assert shown.actions == {"revert": "Undo", "keep": "Keep"}
    # Revert clicked in the daemon reached the helper; it refused (nothing of ours runs) and
    # the tray said so
    assert "Undo failed" in res["revert_notice"], res["revert_notice"]
    print(f"notification Revert → ActionInvoked {revert_s * 1000:.0f} ms")
    print(json.dumps({k: res[k] for k in ("connect_s", "menu_open_s", "icon_geometry")}),
          f"total {time.monotonic() - t0:.1f} s")

    assert res["tray_available"] and res["docked"], res
    # the helper was reached over the real system bus and said what is missing
    assert res["state_ok"] and res["state"] == "unavailable", res
    assert "sched_ext" in res["problem"], res["problem"]
    assert "sched_ext" in res["tooltip"]
    # the real right-click opened the menu, naming the app in front (another process)
    assert res["foreground_backend"] == "x11"
    # named by its window's title, not by its program ("python3.11"): issue #18 item 8
    assert program.startswith("python") and res["optimize_text"] == "Analyze “Probe”", \
        res["menu"]
    assert res["menu"][0] == "Scheduler switching unavailable"
    assert "What is missing and how to fix it…" in res["menu"]
    for item in ("Profiles", "Undo: back to the previous scheduler", "History…", "Settings…",
                 "Quit"):
        assert item in res["menu"]
    assert res["menu_open_s"] < 2.0
    # real clicks on actions did what they say
    assert res["problem_box"] and "sched_ext" in res["problem_box_text"]
    assert res["left_click_menu"]
    assert res["goal_submenu"] and res["goal_saved"] == "throughput"
    assert res["settings_open"] and res["settings_keyring_ok"]  # gnome-keyring on the bus
    assert res["history_open"]  # the helper's History answered over the real bus
    assert not res["history_message"].startswith("Could not"), res["history_message"]
    # "Analyze" ran the real agent loop on the app in front (its process, found over X11)
    assert res["optimize_open"] and res["optimize_pid"] == probe_pid, res
    assert res["optimize_roles"] == ["observation", "stop", "analysis"], res["optimize_lines"]
    assert "waits for a CPU" in res["optimize_lines"][-1], res["optimize_lines"]
    assert res["optimize_lines"][0].startswith("Measured: "), res["optimize_lines"]
    assert "Analysis done" in res["optimize_status"] and res["optimize_closed"]
    assert res["quit"]
