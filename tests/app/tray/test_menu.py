"""The tray's icon states and context menu, offscreen: session events from other threads
reach the menu, actions do what they say, settings changes are saved."""

from __future__ import annotations

import json
import os

from PySide6.QtGui import QColor

from schedcp.desktop.profiles import Profile
from schedcp.tray.icons import resources_dir, state_icon
from schedcp.tray.wording import STATE_TITLES
from schedcp.vocabulary import STATES
from tests.app.tray.fakes import Ident


def texts(menu) -> list[str]:
    return [a.text() for a in menu.actions() if a.isVisible() and not a.isSeparator()]


def centre(state: str) -> QColor:
    img = state_icon(state).pixmap(32, 32).toImage()
    return img.pixelColor(8, 8)  # the badge-free top left of the tile


def test_every_state_has_its_own_svg_icon(qapp):
    assert resources_dir() is not None
    assert set(STATE_TITLES) == set(STATES)  # every state titled, no title for a non-state
    for s in STATES:
        assert (resources_dir() / "icons" / f"schedcp-{s}.svg").is_file()
        assert not state_icon(s).pixmap(22, 22).toImage().isNull()
    # green when optimized, amber during the canary, neutral by default: tell them apart
    assert centre("optimized").green() > centre("optimized").red()
    assert centre("canary").red() > centre("canary").blue()
    assert centre("default") != centre("optimized")
    # the tray's own pixmaps at menu and panel sizes are not blank
    assert state_icon("attention").pixmap(16, 16).toImage().pixelColor(8, 8).alpha() > 0


def test_menu_has_the_issue_items_in_order(tray):
    items = texts(tray.menu)
    assert items[0] == STATE_TITLES["default"]
    tray._before_menu()
    items = texts(tray.menu)
    assert items[1:] == ["Optimize “Firefox”", "Choose another app…", "Goal: Balanced", "Profiles",
                         "Undo: back to the previous scheduler", "History…", "Settings…",
                         "Quit"]
    assert not tray.act_revert.isEnabled()  # nothing of ours runs


def test_state_events_from_another_thread_change_icon_and_menu(tray, session, qtbot):
    problem = ("This kernel lacks sched_ext: boot Linux 6.12+ built with "
               "CONFIG_SCHED_CLASS_EXT. Analysis still works.")
    session.fire("state", {"state": "unavailable", "problem": problem})
    qtbot.waitUntil(lambda: tray.state == "unavailable", timeout=2000)
    assert tray.tray.icon().cacheKey() == state_icon("unavailable").cacheKey()
    assert problem in tray.tray.toolTip()
    assert tray.act_problem.isVisible()
    assert tray.act_detail.text().startswith("This kernel lacks sched_ext")
    tray._before_menu()
    assert tray.act_optimize.text() == "Analyze “Firefox”"  # still usable for analysis
    tray.act_problem.trigger()
    box = tray.windows["problem"]
    assert problem in box.informativeText()

    session.fire("state", {"state": "canary", "problem": ""})
    session.fire("deployed", {"dep_id": "d7", "state": "canary", "name": "vtime",
                              "app": "Firefox"})
    qtbot.waitUntil(lambda: tray.act_detail.text() == "vtime for Firefox", timeout=2000)
    assert tray.tray.icon().cacheKey() == state_icon("canary").cacheKey()
    assert not tray.act_problem.isVisible()
    assert tray.act_revert.isEnabled()
    tray.act_revert.trigger()
    qtbot.waitUntil(lambda: ("revert", "d7", "user") in session.calls, timeout=2000)
    session.fire("reverted", {"dep_id": "d7", "reason": "user"})
    session.fire("state", {"state": "default", "problem": ""})
    qtbot.waitUntil(lambda: tray.state == "default", timeout=2000)
    assert not tray.act_detail.isVisible() and not tray.act_revert.isEnabled()


def test_foreground_own_window_is_ignored(tray, qtbot):
    tray._on_foreground(Ident("exe:/usr/bin/gimp", "GIMP"), 99)
    assert tray.act_optimize.text() == "Optimize “GIMP”"
    tray._on_foreground(Ident("exe:/usr/bin/python3", "schedcp-tray"), os.getpid())
    tray._on_foreground(None, None)
    assert tray.act_optimize.text() == "Optimize “GIMP”"
    tray.foreground.cur = None
    tray.target = None
    tray._before_menu()
    assert not tray.act_optimize.isEnabled()
    assert "no app in front" in tray.act_optimize.text()


def test_goal_is_saved(tray, settings_path):
    tray.goal_actions["throughput"].trigger()
    assert json.loads(settings_path.read_text())["default_goal"] == "throughput"
    assert tray.goal_menu.title() == "Goal: Throughput"
    assert tray.goal_actions["throughput"].isChecked()
    assert not tray.goal_actions["balanced"].isChecked()
    # issue #18 item 9: choosing a goal says what it does and that it is for the next run,
    # and the submenus show their tooltips
    assert "next optimization" in tray.goal_notice and "Throughput" in tray.goal_notice
    assert tray.goal_menu.toolTipsVisible() and tray.profiles_menu.toolTipsVisible()
    assert tray.goal_actions["throughput"].toolTip() == "finish batch work sooner"
    assert texts(tray.goal_menu)[0] == "For the next optimization:"


def test_profiles_submenu(tray, store, settings_path, qtbot):
    store.put(Profile("exe:/usr/bin/blender", "Blender", "vtime", {"slice_us": 20000},
                      "throughput", True))
    tray.profiles_menu.aboutToShow.emit()
    items = texts(tray.profiles_menu)
    assert items[0] == "Apply profiles automatically"
    assert "Blender — vtime" in items
    tray._before_menu()
    tray.profiles_menu.aboutToShow.emit()
    assert "Save profile for “Firefox”…" in texts(tray.profiles_menu)
    tray.act_auto_apply.trigger()
    assert json.loads(settings_path.read_text())["auto_apply_profiles"] is True
    # "Save profile for Firefox…" opens the editor on a new, unsaved profile
    next(a for a in tray.profiles_menu.actions() if a.text().startswith("Save profile")).trigger()
    dlg = tray.windows["profiles"]
    assert dlg.isVisible() and dlg._new and dlg._editing.app_id == "exe:/usr/bin/firefox"
    assert store.get("exe:/usr/bin/firefox") is None
    # a profile entry opens the editor on that profile
    next(a for a in tray.profiles_menu.actions() if a.text() == "Blender — vtime").trigger()
    assert dlg._editing.app_id == "exe:/usr/bin/blender"


def test_notice_is_shown_as_a_tray_message(tray, session, qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr(tray.tray, "showMessage", lambda *a: shown.append(a[:2]))
    session.fire("notice", {"message": "Revert failed: polkit refused", "level": "error"})
    qtbot.waitUntil(lambda: bool(shown), timeout=2000)
    assert shown == [("SchedCP", "Revert failed: polkit refused")]


def test_attention_explains_and_acknowledges(tray, session, qtbot):
    acked = []
    session.acknowledge = lambda: acked.append(1)
    session.fire("state", {"state": "attention",
                           "problem": "Reverted automatically: runnable task stall"})
    qtbot.waitUntil(lambda: tray.state == "attention", timeout=2000)
    assert tray.tray.icon().cacheKey() == state_icon("attention").cacheKey()
    assert tray.act_problem.text() == "What happened…"
    assert tray.act_detail.text() == "Reverted automatically: runnable task stall"
    tray.act_problem.trigger()
    box = tray.windows["problem"]
    assert "runnable task stall" in box.informativeText()
    box.done(0)
    assert acked == [1]


def test_revert_error_is_reported(tray, session, monkeypatch, qtbot):
    from schedcp.client import NotAuthorized

    def deny(*a):
        raise NotAuthorized("org.freedesktop.DBus.Error.AccessDenied", "polkit said no")

    shown = []
    monkeypatch.setattr(session, "revert", deny)
    monkeypatch.setattr(tray.tray, "showMessage", lambda *a: shown.append(a[:2]))
    tray.revert()
    qtbot.waitUntil(lambda: bool(shown), timeout=2000)
    assert "polkit said no" in shown[0][1] and "polkit refused" in shown[0][1]


def test_quit_stops_everything(tray, session, monkeypatch):
    quits = []
    monkeypatch.setattr("schedcp.tray.app.QApplication.quit", lambda: quits.append(1))
    tray.act_quit.trigger()
    assert ("close",) in session.calls and tray.foreground.stopped and quits == [1]


def test_no_helper_on_a_real_bus_explains_how_to_fix(qtbot, tmp_path, settings, store):
    """A real DesktopSession on a real bus where no helper runs: the tray says what is missing
    (install the helper) and still offers analysis and history."""
    from schedcp.client import HelperClient
    from schedcp.desktop.notify import Notifier
    from schedcp.desktop.session import DesktopSession
    from schedcp.tray.app import TrayApp
    from tests.desktop_stack import session_bus

    with session_bus() as bus:
        session = DesktopSession(client_factory=lambda: HelperClient(bus, timeout=5),
                                 settings=settings, notifier=Notifier(bus), store=store,
                                 steps_path=tmp_path / "steps.jsonl", watch_programs=False)
        tray = TrayApp(session, settings, store, settings_path=tmp_path / "s.json")
        tray._on_foreground(Ident("exe:/usr/bin/gimp", "GIMP"), 99)
        try:
            session.connect()
            qtbot.waitUntil(lambda: tray.state == "unavailable" and bool(tray.problem),
                            timeout=5000)
            assert "helper is not installed or not running" in tray.problem
            assert "sudo apt install schedcp-helper" in tray.problem
            assert tray.act_problem.isVisible() and not tray.act_revert.isEnabled()
            assert tray.act_optimize.text() == "Analyze “GIMP”"
            assert tray.act_optimize.isEnabled() and tray.act_history.isEnabled()
        finally:
            session.close()
            tray.tray.hide()


def test_choose_app_when_nothing_is_in_front(tray, qtbot):
    """Issue #18 item 8: a window without _NET_WM_PID left a greyed "no app in front" and no
    way to pick one. "Choose an app…" lists apps by the names people know; choosing one
    starts the optimization (or analysis) of that app."""
    from schedcp.desktop.apps import AppIdentity

    tray.target = None
    tray._refresh_target()
    assert not tray.act_optimize.isEnabled() and tray.act_choose.text() == "Choose an app…"
    kart = AppIdentity("exe:/usr/games/supertuxkart", "SuperTuxKart", "/usr/games/x", "game")
    tray.candidates = lambda: [(kart, 4242)]
    started = []
    tray.optimize_target = lambda: started.append(tray.target)
    tray.act_choose.trigger()
    dlg = tray.windows["choose"]
    from PySide6.QtWidgets import QListWidget

    lst = dlg.findChild(QListWidget)
    assert [lst.item(i).text() for i in range(lst.count())] == ["SuperTuxKart"]
    lst.setCurrentRow(0)
    dlg.accept()
    assert started == [(kart, 4242)]
    assert tray.act_optimize.text() == "Optimize “SuperTuxKart”"
