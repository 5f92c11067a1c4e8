"""The real tray, driven like a person would: run as its own process (Qt on xcb) under an X
server with a window manager and a tray host, it starts ``TrayApp`` on a real
``DesktopSession`` (the helper on the bus in $DBUS_SYSTEM_BUS_ADDRESS), then uses xdotool for
real pointer clicks on the docked icon and the menu. Prints one JSON object with what it saw.

    python -m tests.app.tray.x11_driver OUT.json [SCREENSHOT_DIR]

Called by test_tray_x11.py (which starts the X server, tray host, buses and the target window).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QRect
from PySide6.QtWidgets import QApplication


def pump(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents(QEventLoop.AllEvents, 30)
        if pred():
            return True
        time.sleep(0.01)
    QApplication.processEvents()
    return bool(pred())


def xdo(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=10)


def click(x: int, y: int, button: int = 1) -> None:
    xdo("mousemove", str(x), str(y), "sleep", "0.15", "click", str(button))


def main() -> int:
    out = Path(sys.argv[1])
    shots = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    from schedcp.client import HelperClient
    from schedcp.desktop.foreground import ForegroundWatcher
    from schedcp.desktop.notify import Notifier
    from schedcp.desktop.profiles import ProfileStore
    from schedcp.desktop.session import DesktopSession
    from schedcp.desktop.settings import Settings
    from schedcp.tray.app import TrayApp
    from schedcp.tray.icons import app_icon

    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())
    res: dict = {"tray_available": bool(__import__("PySide6.QtWidgets", fromlist=["x"])
                                        .QSystemTrayIcon.isSystemTrayAvailable())}
    settings_path = Path(os.environ["XDG_CONFIG_HOME"]) / "schedcp" / "settings.json"
    settings = Settings.load(settings_path)
    store = ProfileStore(Path(os.environ["XDG_DATA_HOME"]) / "profiles.json")
    session = DesktopSession(client_factory=HelperClient, settings=settings,
                             notifier=Notifier(), store=store)
    holder: list = []
    fg = ForegroundWatcher(on_change=lambda i, p: holder[0].bridge.on_foreground(i, p)
                           if holder else None)
    tray = TrayApp(session, settings, store, foreground=fg, settings_path=settings_path)
    holder.append(tray)
    tray.show()
    fg.start()
    t0 = time.monotonic()
    threading.Thread(target=session.connect, daemon=True).start()
    res["state_ok"] = pump(lambda: tray.state == "unavailable" and tray.problem, 30)
    res["connect_s"] = round(time.monotonic() - t0, 3)
    res["state"], res["problem"], res["tooltip"] = tray.state, tray.problem, tray.tray.toolTip()
    res["foreground_backend"] = fg.backend
    res["docked"] = pump(lambda: tray.tray.geometry().x() > 0, 15)
    g = tray.tray.geometry()
    res["icon_geometry"] = [g.x(), g.y(), g.width(), g.height()]
    icon_x, icon_y = g.center().x(), g.center().y()

    def open_menu() -> float:
        t = time.monotonic()
        click(icon_x, icon_y, 3)  # a real right-click on the docked icon
        if not pump(lambda: tray.menu.isVisible(), 5):
            raise SystemExit("the context menu did not open")
        pump(lambda: False, 0.3)  # let it paint (and hover state settle)
        return time.monotonic() - t

    def click_action(menu, action) -> None:
        r = menu.actionGeometry(action)
        p = menu.mapToGlobal(r.center())
        click(p.x(), p.y())

    # 1. the menu, with the explanation of what is missing
    res["menu_open_s"] = round(open_menu(), 3)
    res["menu"] = [a.text() for a in tray.menu.actions()
                   if a.isVisible() and not a.isSeparator()]
    res["optimize_text"] = tray.act_optimize.text()
    if shots:
        m = tray.menu.geometry()
        area = m.united(g).adjusted(-12, -12, 12, 12)
        scr = app.primaryScreen()
        area = area.intersected(QRect(scr.geometry()))
        scr.grabWindow(0, area.x(), area.y(), area.width(), area.height()).save(
            str(shots / "tray-menu.png"))
    click_action(tray.menu, tray.act_problem)
    res["problem_box"] = pump(lambda: "problem" in tray.windows
                              and tray.windows["problem"].isVisible(), 5)
    if res["problem_box"]:
        res["problem_box_text"] = tray.windows["problem"].informativeText()
        tray.windows["problem"].close()
        pump(lambda: False, 0.2)

    # a left click opens the same menu (where most desktops expect it)
    click(icon_x, icon_y, 1)
    res["left_click_menu"] = pump(lambda: tray.menu.isVisible(), 5)
    xdo("key", "Escape")
    pump(lambda: not tray.menu.isVisible(), 3)

    # 2. a submenu: Goal → Throughput (hover the submenu, click the item)
    open_menu()
    click_action(tray.menu, tray.goal_menu.menuAction())
    res["goal_submenu"] = pump(lambda: tray.goal_menu.isVisible(), 5)
    pump(lambda: False, 0.2)
    click_action(tray.goal_menu, tray.goal_actions["throughput"])
    pump(lambda: settings.default_goal == "throughput", 5)
    res["goal_saved"] = (json.loads(settings_path.read_text())["default_goal"]
                         if settings_path.exists() else None)

    # 3. Settings… opens the dialog
    open_menu()
    click_action(tray.menu, tray.act_settings)
    res["settings_open"] = pump(lambda: "settings" in tray.windows
                                and tray.windows["settings"].isVisible(), 5)
    if res["settings_open"]:
        res["settings_keyring_ok"] = tray.windows["settings"].keyring_ok
        pump(lambda: False, 0.4)
        if shots:
            tray.windows["settings"].grab().save(str(shots / "settings.png"))
        tray.windows["settings"].close()

    # 4. History… opens the window over the real helper's history
    open_menu()
    click_action(tray.menu, tray.act_history)
    res["history_open"] = pump(lambda: "history" in tray.windows
                               and tray.windows["history"].isVisible(), 5)
    if res["history_open"]:
        h = tray.windows["history"]
        pump(lambda: not h.loading, 10)
        res["history_rows"] = h.tree.topLevelItemCount()
        res["history_message"] = h.message.text()
        h.close()

    # 5. "Analyze <the app in front>": the real agent loop measures the other process
    open_menu()
    click_action(tray.menu, tray.act_optimize)
    res["optimize_open"] = pump(lambda: tray.optimize_dialog is not None
                                and tray.optimize_dialog.isVisible(), 5)
    if res["optimize_open"]:
        dlg = tray.optimize_dialog
        pump(lambda: not dlg.running, 90)
        res["optimize_pid"] = dlg.request.pid
        res["optimize_roles"] = [s["role"] for s in dlg.steps]
        res["optimize_lines"] = [dlg.list.item(i).text() for i in range(dlg.list.count())]
        res["optimize_status"] = dlg.status.text()
        if shots:
            pump(lambda: False, 0.3)
            dlg.grab().save(str(shots / "optimize.png"))
        dlg.close_button.click()
        res["optimize_closed"] = pump(lambda: not dlg.isVisible(), 5)

    # 6. "Applied X for Y: effect" through the real notification daemon; the test clicks its
    # Revert there, the session asks the helper (nothing of ours runs: it refuses) and the
    # tray shows why
    from schedcp.vocabulary import outcome_sentence

    notices: list = []
    tray.bridge.session_event.connect(lambda k, i: notices.append(i.get("message", ""))
                                      if k == "notice" else None)
    effect = outcome_sentence({"before": {"wake_p99_ms": 2.0}, "after": {"wake_p99_ms": 1.3}},
                              "responsiveness")
    nid = session.announce("no-such-deployment", "vtime", "Firefox", effect)
    res["notification_id"] = nid
    print(f"NOTIFIED {nid}", flush=True)
    res["revert_notice"] = pump(lambda: bool(notices), 30) and notices[0]

    # 7. Quit ends it cleanly
    open_menu()
    quit_seen: list = []
    tray.act_quit.triggered.connect(lambda: quit_seen.append(1))
    click_action(tray.menu, tray.act_quit)
    pump(lambda: bool(quit_seen) and not tray.tray.isVisible(), 5)
    res["quit"] = bool(quit_seen) and not tray.tray.isVisible()
    out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
