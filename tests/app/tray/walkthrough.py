"""The scripted walk-through (issue #18): the real tray under a real X server, tray host and
dunst, clicked like a person would (xdotool right-click on the docked icon, a left click on
each menu item's centre), through EVERY enabled menu and submenu item, in one helper state per
run; every window, dialog and notification it opens is saved as a screenshot.

    python -m tests.app.tray.walkthrough STATE OUT.json SHOTS_DIR

STATE: ``unsupported`` (the real helper on $DBUS_SYSTEM_BUS_ADDRESS: this host has no
sched_ext), ``no-helper`` (a bus address nothing answers on), ``refused`` (a helper client
that polkit refuses: NotAuthorized, as for a user without consent) and ``supported`` (a
stand-in helper that reports sched_ext and a kept scheduler: no kernel here has sched_ext, and
the real switching path is covered in the micro-VM by test_session_vm). Analyze runs the real
agent loop on the window in front; Optimize in ``supported`` runs a scripted loop (one kept
winner) so that its notification, with Undo and Keep, is shown by the real daemon.

Writes a manifest: for each click, the menu path, what happened and the screenshot's name.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication, QMessageBox
from shiboken6 import isValid

from tests.app.tray.x11_driver import click, pump, xdo

STATES = ("unsupported", "no-helper", "refused", "supported")
SUPPORTED = {"supported": True, "state": "enabled", "ops": "vtime", "target": "",
             "deployment": "d1", "deployment_state": "kept", "deployment_name": "vtime",
             "deployment_kind": "bpf", "deployment_owner": "", "deployment_started": 0.0,
             "deployment_output": "", "last_known_good": "vtime",
             "last_known_good_kind": "bpf", "target_problem": ""}


class StandIn:
    """A helper client for the states this host cannot reach for real (see the docstring)."""

    def __init__(self, state: str):
        self.state, self.calls = state, []

    def subscribe(self, cb):
        return lambda: None

    def status(self):
        if self.state == "refused":
            from schedcp.client import NotAuthorized

            raise NotAuthorized("org.schedcp.Helper1.Error.NotAuthorized",
                                "polkit refused org.schedcp.helper.status for this user")
        return dict(SUPPORTED)

    def history(self, limit=50):
        now = time.time()
        return [{"id": "d1", "spec": {"kind": "bpf", "name": "vtime",
                                      "tunables": {"slice_us": 3000}},
                 "state": "kept", "started": now - 600, "ended": 0.0, "reason": "",
                 "previous": None, "metrics": [{"t": now - 600 + i, "value": v, "baseline": 4.1}
                                               for i, v in enumerate((3.0, 2.7, 2.6, 2.5))]},
                {"id": "c0", "spec": {"kind": "scx", "name": "scx_rusty", "tunables": {}},
                 "state": "reverted", "started": now - 3600, "ended": now - 3590,
                 "reason": "after the canary, runqueue wait of pid 4242 rose past 3x its "
                           "baseline", "previous": None, "metrics": []}]

    def revert(self, dep_id="", reason=""):
        self.calls.append(("revert", dep_id))
        return "reverted"

    def keep(self, dep_id):
        self.calls.append(("keep", dep_id))
        return "kept"

    def close(self):
        pass


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "item"


def main() -> int:
    state, out, shots = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    shots.mkdir(parents=True, exist_ok=True)
    from schedcp.client import HelperClient
    from schedcp.desktop.foreground import ForegroundWatcher
    from schedcp.desktop.notify import Notifier
    from schedcp.desktop.profiles import Profile, ProfileStore
    from schedcp.desktop.session import DesktopSession
    from schedcp.desktop.settings import Settings
    from schedcp.tray.app import TrayApp
    from schedcp.tray.icons import app_icon
    from tests.app.tray.fakes import fake_runner

    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())
    settings_path = Path(os.environ["XDG_CONFIG_HOME"]) / "schedcp" / "settings.json"
    settings = Settings.load(settings_path)
    store = ProfileStore(Path(os.environ["XDG_DATA_HOME"]) / "profiles.json")
    store.put(Profile("exe:/usr/games/supertuxkart", "SuperTuxKart", "interactive",
                      {"slice_us": 2000}, "responsiveness", auto_apply=True))
    factory = HelperClient if state in ("unsupported", "no-helper") else (lambda: StandIn(state))
    session = DesktopSession(client_factory=factory, settings=settings, notifier=Notifier(),
                             store=store, watch_programs=False)
    holder: list = []
    fg = ForegroundWatcher(on_change=lambda i, p: holder[0].bridge.on_foreground(i, p)
                           if holder else None)
    kw = {"run_optimization": fake_runner()} if state == "supported" else {}
    tray = TrayApp(session, settings, store, foreground=fg, settings_path=settings_path, **kw)
    holder.append(tray)
    tray.show()
    fg.start()
    session.connect()
    want = "optimized" if state == "supported" else "unavailable"
    manifest: dict = {"state": state, "tray_state": "", "problem": "", "clicks": []}
    pump(lambda: tray.state == want and (state == "supported" or bool(tray.problem)), 30)
    manifest["tray_state"], manifest["problem"] = tray.state, tray.problem
    if not pump(lambda: tray.tray.geometry().x() > 0, 15):
        raise SystemExit("the tray icon never docked")
    g = tray.tray.geometry()
    icon = (g.center().x(), g.center().y())
    scr = app.primaryScreen()
    n = [0]

    def shot(name: str, rect: QRect | None = None) -> str:
        pump(lambda: False, 0.35)  # a fresh window paints before it can be grabbed
        n[0] += 1
        file = f"{state}-{n[0]:02d}-{slug(name)}.png"
        r = (rect or scr.geometry()).intersected(scr.geometry())
        scr.grabWindow(0, r.x(), r.y(), r.width(), r.height()).save(str(shots / file))
        return file

    def open_menu():
        click(*icon, 3)
        if not pump(lambda: tray.menu.isVisible(), 5):
            raise SystemExit("the context menu did not open")
        pump(lambda: False, 0.25)

    def click_action(menu, action) -> None:
        p = menu.mapToGlobal(menu.actionGeometry(action).center())
        click(p.x(), p.y())

    def close_menus() -> None:
        for _ in range(3):
            if not QApplication.activePopupWidget():
                break
            xdo("key", "Escape")
            pump(lambda: False, 0.1)

    def windows_now() -> set:
        return {w for w in QApplication.topLevelWidgets() if isValid(w) and w.isVisible()
                and not w.inherits("QMenu")}

    def record(path: list[str], what: str, file: str = "", **extra) -> None:
        manifest["clicks"].append({"path": path, "result": what, "shot": file, **extra})

    def after_click(path: list[str], before: set) -> None:
        """Whatever the click opened: screenshot it, note it, close it."""
        dlg = tray.optimize_dialog
        if dlg is not None and dlg.isVisible() and dlg.running:
            pump(lambda: not dlg.running, 120)
        new = [w for w in windows_now() - before]
        if not new:
            pump(lambda: bool(windows_now() - before), 1.5)
            new = [w for w in windows_now() - before]
        if not new:
            record(path, "no window", shot(" ".join(path)))
            return
        for w in new:
            pump(lambda w=w: w.isVisible() and w.frameGeometry().width() > 120
                 and w.windowHandle() is not None and w.windowHandle().isExposed(), 5)
            title = w.windowTitle()
            text = ""
            if isinstance(w, QMessageBox):
                text = w.text() + "\n" + w.informativeText()
            elif dlg is not None and w is dlg:
                text = "\n".join(dlg.list.item(i).text() for i in range(dlg.list.count()))
                text += "\n" + dlg.status.text()
            elif hasattr(w, "tree"):  # History
                pump(lambda w=w: not w.loading, 10)
                rows = [" | ".join(w.tree.topLevelItem(i).text(c) for c in range(5))
                        for i in range(w.tree.topLevelItemCount())]
                text = "\n".join(rows) + "\n" + w.message.text()
                if w.tree.topLevelItemCount():
                    w.tree.setCurrentItem(w.tree.topLevelItem(0))
            if w.frameGeometry().width() > 120:  # mapped by the window manager: as seen
                file = shot(" ".join(path), w.frameGeometry().adjusted(-2, -2, 2, 2))
            else:  # not (yet) placed on screen: the widget's own rendering
                n[0] += 1
                file = f"{state}-{n[0]:02d}-{slug(' '.join(path))}.png"
                w.grab().save(str(shots / file))
            record(path, f"window: {title}", file, text=text)
            if hasattr(w, "details"):  # History's Details toggle: the jargon, on request
                w.details.setChecked(True)
                record([*path, "Details"], "details shown",
                       shot(" ".join(path) + " details", w.frameGeometry()),
                       text=w.detail.toPlainText())
            if hasattr(w, "close_button") and w.close_button.isVisible():
                w.close_button.click()
            else:
                w.close()
            pump(lambda w=w: not isValid(w) or not w.isVisible(), 3)

    # the closed menu's first look
    open_menu()
    m = tray.menu.geometry()
    record(["menu"], "opened", shot("menu", m.united(g).adjusted(-12, -12, 12, 12)),
           items=[a.text() for a in tray.menu.actions() if a.isVisible()
                  and not a.isSeparator()])
    close_menus()

    top = [a for a in tray.menu.actions() if a.isVisible() and not a.isSeparator()
           and a is not tray.act_quit]
    for action in top:
        label = action.text()
        sub = action.menu()
        if not action.isEnabled():
            record([label], "disabled (information only)")
            continue
        if sub is None:
            before = windows_now()
            open_menu()
            click_action(tray.menu, action)
            pump(lambda: not tray.menu.isVisible(), 2)
            after_click([label], before)
            continue
        open_menu()
        click_action(tray.menu, action)
        pump(lambda s=sub: s.isVisible(), 3)
        # plain data: the Profiles submenu is rebuilt each time it opens (its actions go)
        items = [(a.text(), a.isEnabled(), a.isCheckable(), a.toolTip())
                 for a in sub.actions() if a.isVisible() and not a.isSeparator()]
        record([label], "submenu opened",
               shot(label, sub.geometry().united(tray.menu.geometry()).adjusted(-8, -8, 8, 8)),
               items=[t for t, *_ in items], tooltips=[tip for *_, tip in items],
               tooltips_visible=sub.toolTipsVisible())
        close_menus()
        for i, (text, enabled, checkable, _tip) in enumerate(items):
            if not enabled:
                record([label, text], "disabled (information only)")
                continue
            before = windows_now()
            open_menu()
            click_action(tray.menu, action)
            pump(lambda s=sub: s.isVisible(), 3)
            cur = [a for a in sub.actions() if a.isVisible() and not a.isSeparator()]
            click_action(sub, cur[i])
            pump(lambda: not tray.menu.isVisible(), 2)
            if checkable or label.startswith("Goal"):
                record([label, text], "toggled" if checkable else "chosen",
                       goal=settings.default_goal, notice=tray.goal_notice,
                       auto_apply=settings.auto_apply_profiles)
                close_menus()
                continue
            after_click([label, text], before)

    # the notification the supported state's optimization left: shown by dunst, then Undo
    if state == "supported":
        top_right = QRect(scr.geometry().width() - 420, 0, 420, 160)
        record(["notification"], "shown", shot("notification", top_right))
    quit_seen: list = []
    tray.act_quit.triggered.connect(lambda: quit_seen.append(1))
    open_menu()
    click_action(tray.menu, tray.act_quit)
    pump(lambda: bool(quit_seen), 5)
    record(["Quit"], "quit" if quit_seen else "did not quit")
    fg.stop()
    out.write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
