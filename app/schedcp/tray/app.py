"""``schedcp-tray``: the system-tray icon and its menu. The icon's look is the state (kernel
default, optimized, canary, attention, unavailable); the menu is the whole UI: optimize the
foreground app, pick a goal, profiles, revert, history, settings.

All logic that is not drawing is in ``schedcp.desktop``; this class wires it to Qt. Dialogs are
imported when first opened, so an idle tray never loads QtCharts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCursor, QFont
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox, QSystemTrayIcon

from ..desktop import optimizer
from ..vocabulary import (
    AUTO_PROFILES,
    AUTO_PROFILES_HINT,
    GOAL_HINTS,
    GOAL_LABELS,
    GOALS,
    UNDO_LONG,
    gain_text,
    outcome_sentence,
)
from .bridge import Bridge
from .icons import app_icon, state_icon
from .wording import STATE_TITLES

log = logging.getLogger("schedcp.tray")


def _elide(text: str, n: int = 32) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class TrayApp(QObject):
    """The tray icon, its menu and the windows it opens.

    ``session`` is a ``desktop.session.DesktopSession`` (or anything with its API); ``secrets``
    is a namespace with ``get_api_key``, ``set_api_key`` and ``set_autostart`` (default:
    ``desktop.settings``); ``identify``/``app_root`` default to ``desktop.apps``.
    """

    def __init__(self, session: Any, settings: Any, store: Any, *, foreground: Any = None,
                 settings_path: Path | None = None, policies: Callable[[], dict] | None = None,
                 run_optimization: Callable[..., Any] = optimizer.run,
                 client_factory: Callable[[], Any] | None = None,
                 app_root: Callable[[int], int] | None = None, secrets: Any = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.settings, self.store = session, settings, store
        self.foreground, self.settings_path = foreground, settings_path
        self._policies = policies
        self._run_optimization = run_optimization
        self._client_factory = client_factory
        self._app_root = app_root
        self._secrets = secrets
        self.bridge = Bridge(self)
        self.bridge.session_event.connect(self._on_session_event)
        self.bridge.foreground.connect(self._on_foreground)
        self.state, self.problem = "unavailable", ""
        self.current: dict = {}  # the deployment running for us now ({} = none)
        self.others = ""  # the helper's line on who holds the CPU scheduler
        self.target: tuple[Any, int] | None = None  # (AppIdentity, pid) to optimize
        self.windows: dict[str, Any] = {}  # open dialogs by name (one of each)
        self.optimize_dialog = None
        self.goal_notice = ""  # the last "what the goal does" message shown
        self.candidates: Callable[[], list] | None = None  # "Choose app…" (default: desktop)

        self.tray = QSystemTrayIcon(self)
        self.menu = QMenu()
        self.menu.setToolTipsVisible(True)
        self._build_menu()
        self.tray.setContextMenu(self.menu)
        self.tray.activated.connect(self._on_activated)
        self.menu.aboutToShow.connect(self._before_menu)
        session.add_listener(self.bridge.on_session)
        self._set_state(getattr(session, "state", "unavailable") or "unavailable",
                        getattr(session, "problem", "") or "")

    # -- menu ------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        m = self.menu
        self.act_status = m.addAction("")
        self.act_status.setEnabled(False)
        bold = QFont(self.act_status.font())
        bold.setBold(True)
        self.act_status.setFont(bold)
        self.act_detail = m.addAction("")
        self.act_detail.setEnabled(False)
        self.act_problem = m.addAction("What is missing and how to fix it…")
        self.act_problem.triggered.connect(self.show_problem)
        m.addSeparator()
        self.act_optimize = m.addAction("")
        self.act_optimize.triggered.connect(self.optimize_target)
        self.act_choose = m.addAction("Choose another app…")
        self.act_choose.setToolTip("Pick the app from a list: for one that is not in front, "
                                   "or when SchedCP cannot tell which one is")
        self.act_choose.triggered.connect(self.choose_app)
        self.goal_menu = m.addMenu("Goal")
        self.goal_menu.setToolTipsVisible(True)  # Qt hides menu tooltips unless asked
        self.goal_menu.setToolTip("What the next optimization aims for")
        head = self.goal_menu.addAction("For the next optimization:")
        head.setEnabled(False)
        self.goal_group = QActionGroup(self)
        self.goal_group.setExclusive(True)
        self.goal_actions: dict[str, QAction] = {}
        for g in GOALS:
            a = self.goal_menu.addAction(GOAL_LABELS[g])
            a.setCheckable(True)
            a.setToolTip(GOAL_HINTS[g])
            a.setData(g)
            self.goal_group.addAction(a)
            self.goal_actions[g] = a
        self.goal_group.triggered.connect(lambda a: self.set_goal(a.data()))
        self.profiles_menu = m.addMenu("Profiles")
        self.profiles_menu.setToolTipsVisible(True)
        m.setToolTipsVisible(True)
        self.profiles_menu.aboutToShow.connect(self._fill_profiles_menu)
        self._fill_profiles_menu()
        self.act_revert = m.addAction(UNDO_LONG)
        self.act_revert.triggered.connect(self.revert)
        m.addSeparator()
        self.act_history = m.addAction("History…")
        self.act_history.triggered.connect(self.show_history)
        self.act_settings = m.addAction("Settings…")
        self.act_settings.triggered.connect(self.show_settings)
        m.addSeparator()
        self.act_quit = m.addAction("Quit")
        self.act_quit.triggered.connect(self.quit)
        self._refresh_goal()
        self._refresh_target()

    def _fill_profiles_menu(self) -> None:
        pm = self.profiles_menu
        pm.clear()
        auto = pm.addAction(AUTO_PROFILES)
        auto.setCheckable(True)
        auto.setChecked(bool(self.settings.auto_apply_profiles))
        auto.setToolTip(f"{AUTO_PROFILES_HINT[:1].upper()}{AUTO_PROFILES_HINT[1:]}; the "
                        "previous scheduler comes back when the app exits")
        auto.toggled.connect(self.set_auto_apply)
        self.act_auto_apply = auto
        pm.addSeparator()
        try:
            profiles = self.store.list()
        except Exception as e:  # a broken store must not break the menu
            log.warning("profiles: %s", e)
            profiles = []
        if not profiles:
            a = pm.addAction("No profiles yet")
            a.setEnabled(False)
        for p in sorted(profiles, key=lambda p: p.name.lower()):
            a = pm.addAction(f"{_elide(p.name, 24)} — {p.policy}")
            when = {"auto": "applied automatically" if self.settings.auto_apply_profiles
                    else "asks first (automatic applying is off)",
                    "ask": "asks before applying", "off": "off"}[p.when]
            a.setToolTip(f"Goal: {GOAL_LABELS.get(p.goal, p.goal)}; {when}")
            a.triggered.connect(lambda _=False, app_id=p.app_id: self.show_profiles(app_id))
        pm.addSeparator()
        self.act_save_profile = pm.addAction("Save profile for this app…")
        self.act_save_profile.triggered.connect(self.save_profile_for_target)
        self._refresh_target()
        pm.addAction("Edit profiles…").triggered.connect(lambda: self.show_profiles())

    def _goal(self) -> str:
        """The goal an optimization starts with: the session's (the user's choice, else the
        power profile's: power-saver → battery), else the setting."""
        goal = getattr(self.session, "goal", None)
        if not isinstance(goal, str) or goal not in GOALS:
            goal = self.settings.default_goal
        return goal if goal in GOALS else "balanced"

    def _refresh_goal(self) -> None:
        goal = self._goal()
        self.goal_actions[goal].setChecked(True)
        why = " (power saver)" if goal != self.settings.default_goal else ""
        self.goal_menu.setTitle(f"Goal: {GOAL_LABELS[goal]}{why}")

    def _refresh_target(self) -> None:
        if not hasattr(self, "act_optimize"):
            return
        verb = "Analyze" if self.state == "unavailable" else "Optimize"
        running = self.optimize_dialog is not None and self.optimize_dialog.running
        if running:
            self.act_optimize.setText(f"{verb} “{_elide(self.optimize_dialog.request.name)}”: "
                                      "show progress…")
            self.act_optimize.setEnabled(True)
        elif self.target is not None:
            self.act_optimize.setText(f"{verb} “{_elide(self.target[0].name)}”")
            self.act_optimize.setEnabled(True)
        else:
            self.act_optimize.setText(f"{verb} this app (no app in front)")
            self.act_optimize.setEnabled(False)
        if hasattr(self, "act_choose"):
            self.act_choose.setText("Choose an app…" if self.target is None
                                    else "Choose another app…")
        self.act_optimize.setToolTip(
            "Measure the app in front and try schedulers for it, keeping the best"
            if verb == "Optimize" else
            "sched_ext is unavailable: measure the app and report, without changing anything")
        save = getattr(self, "act_save_profile", None)
        if save is not None:
            try:
                save.setEnabled(self.target is not None)
                save.setText(f"Save profile for “{_elide(self.target[0].name, 24)}”…"
                             if self.target else "Save profile for this app…")
            except RuntimeError:  # the submenu was rebuilt and deleted this action
                self.act_save_profile = None

    def _before_menu(self) -> None:
        if self.foreground is not None:
            try:
                cur = self.foreground.current()
            except Exception:  # detection is best effort
                cur = None
            if cur is not None:
                self._on_foreground(*cur)
        self._refresh_target()

    # -- state -------------------------------------------------------------------------------
    def _set_state(self, state: str, problem: str) -> None:
        if (state, problem) != (getattr(self, "state", None), getattr(self, "problem", None)):
            log.info("state: %s%s", state, f" ({problem})" if problem else "")
        self.state, self.problem = state, problem
        self.tray.setIcon(state_icon(state))
        self.act_status.setText(STATE_TITLES.get(state, state))
        detail = ""
        if self.current and state in ("optimized", "canary"):
            app = self.current.get("app") or ""
            detail = f"{self.current.get('policy', '?')}" + (f" for {app}" if app else "")
        elif state in ("unavailable", "attention") and problem:
            detail = _elide(problem.split(". ")[0].split(", so")[0], 56)
        elif self.others and not self.others.startswith("kernel default"):
            detail = _elide(self.others, 56)  # "scx_lavd via scx_loader (Gaming)"
        self.act_detail.setText(detail)
        self.act_detail.setVisible(bool(detail))
        self.act_problem.setVisible(bool(problem))
        self.act_problem.setText("What happened…" if state == "attention" else
                                 "What is missing and how to fix it…")
        self.act_revert.setEnabled(state in ("optimized", "canary"))
        tip = "SchedCP: " + STATE_TITLES.get(state, state)
        if detail:
            tip += "\n" + detail
        if problem:
            tip += "\n" + problem
        if self.others:
            tip += "\nCPU scheduler: " + self.others
        self.tray.setToolTip(tip)
        self._refresh_target()

    def _on_session_event(self, kind: str, info: dict) -> None:
        if kind == "state":
            self.others = str((info.get("status") or {}).get("others") or "")
            self._set_state(info.get("state", self.state), info.get("problem", ""))
        elif kind == "deployed":
            prev = self.current if self.current.get("dep_id") == info.get("dep_id") else {}
            self.current = {"dep_id": info.get("dep_id", ""),
                            "policy": info.get("name") or prev.get("policy", ""),
                            "app": info.get("app") or prev.get("app", "")}
            self._set_state(self.state, self.problem)
        elif kind == "reverted":
            if not info.get("dep_id") or info.get("dep_id") == self.current.get("dep_id"):
                self.current = {}
            self._set_state(self.state, self.problem)
        elif kind == "notice":  # something to read that no notification carries
            level = {"error": QSystemTrayIcon.Critical, "warning": QSystemTrayIcon.Warning}
            self.tray.showMessage("SchedCP", info.get("message", ""),
                                  level.get(info.get("level", ""), QSystemTrayIcon.Information),
                                  10000)
        elif kind == "power":  # the power profile changed: the goal may follow it
            self._refresh_goal()
        elif kind == "profile" and "profiles" in self.windows:
            self.windows["profiles"].reload()
        hist = self.windows.get("history")
        if hist is not None and kind in ("deployed", "reverted"):
            QTimer.singleShot(300, hist.reload)

    def _on_foreground(self, identity, pid) -> None:
        if identity is None or pid is None or pid == os.getpid():
            return  # our own menu or dialog in front: keep the app the person was using
        self.target = (identity, int(pid))
        self._refresh_target()

    def _on_activated(self, reason) -> None:
        if reason == QSystemTrayIcon.Trigger:  # left click: the same menu, where the cursor is
            self._before_menu()
            self.menu.popup(QCursor.pos())

    # -- actions ----------------------------------------------------------------------------
    def show_problem(self) -> None:
        attention = self.state == "attention"
        box = QMessageBox(QMessageBox.Warning if attention else QMessageBox.Information,
                          "SchedCP: what happened" if attention else "SchedCP: what is missing",
                          STATE_TITLES.get(self.state, self.state))
        box.setWindowIcon(app_icon())
        box.setInformativeText(
            (self.problem or "Nothing is missing.") + (
                "\n\nThe previous scheduler runs again. The History window has the details."
                if attention else "\n\nThe tray stays usable: it can still analyze an app "
                "and show the history."))
        box.setAttribute(Qt.WA_DeleteOnClose)
        if attention and hasattr(self.session, "acknowledge"):
            box.finished.connect(lambda _r: self.session.acknowledge())
        self.windows["problem"] = box
        box.destroyed.connect(lambda: self.windows.pop("problem", None))
        box.show()

    def set_goal(self, goal: str) -> None:
        if goal == self.settings.default_goal:
            return
        old, chosen = self.settings.default_goal, self.settings.goal_chosen
        self.settings.default_goal, self.settings.goal_chosen = goal, True
        if not self._save_settings():
            self.settings.default_goal, self.settings.goal_chosen = old, chosen
        self._refresh_goal()
        if self.settings.default_goal == goal:  # say what changed, and when it matters
            self.goal_notice = (f"Goal: {GOAL_LABELS[goal]} ({GOAL_HINTS[goal]}). The next "
                                "optimization aims for it; what runs now is unchanged.")
            self.tray.showMessage("SchedCP", self.goal_notice, QSystemTrayIcon.Information,
                                  5000)

    def set_auto_apply(self, on: bool) -> None:
        self.settings.auto_apply_profiles = bool(on)
        if not self._save_settings():
            self.settings.auto_apply_profiles = not on

    def _set_auto_from_profiles(self, on: bool) -> None:
        """The Profiles dialog's switch: the same setting as the menu's, kept in step."""
        self.set_auto_apply(on)
        self.act_auto_apply.blockSignals(True)
        self.act_auto_apply.setChecked(bool(self.settings.auto_apply_profiles))
        self.act_auto_apply.blockSignals(False)

    def _save_settings(self) -> bool:
        try:
            self.settings.save(self.settings_path)
            return True
        except (OSError, ValueError) as e:
            self.tray.showMessage("SchedCP: settings not saved", str(e),
                                  QSystemTrayIcon.Warning, 8000)
            return False

    def revert(self) -> None:
        """In a worker thread: the helper may take seconds to put the previous scheduler
        back, and the menu must not freeze meanwhile. The outcome arrives as session events."""
        dep_id = self.current.get("dep_id", "")

        def work() -> None:
            try:
                self.session.revert(dep_id, "user")
            except Exception as e:  # the session reports its own errors; this is a bug net
                self.bridge.on_session("notice", {"message": f"Revert failed: {e}",
                                                  "level": "error"})

        threading.Thread(target=work, name="schedcp-revert", daemon=True).start()

    def choose_app(self) -> None:
        """A list of the apps a person could mean; choosing one analyzes or optimizes it."""
        from PySide6.QtWidgets import QDialog, QDialogButtonBox, QListWidget, QVBoxLayout

        if self.candidates is None:
            from ..desktop.foreground import candidates as found
        else:
            found = self.candidates
        try:
            apps = found()
        except Exception as e:  # best effort: say so instead of failing silently
            log.warning("choose app: %s", e)
            apps = []
        dlg = QDialog()
        dlg.setWindowTitle("SchedCP: choose an app")
        dlg.setWindowIcon(app_icon())
        lay = QVBoxLayout(dlg)
        lst = QListWidget()
        for ident, pid in apps:
            lst.addItem(ident.name)
            lst.item(lst.count() - 1).setData(Qt.UserRole, (ident, pid))
        if not apps:
            lst.addItem("No apps found")
            lst.item(0).setFlags(Qt.NoItemFlags)
        lay.addWidget(lst)
        verb = "Analyze" if self.state == "unavailable" else "Optimize"
        buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        go = buttons.addButton(verb, QDialogButtonBox.AcceptRole)
        go.setEnabled(False)
        lst.currentItemChanged.connect(lambda cur, _p: go.setEnabled(
            cur is not None and cur.data(Qt.UserRole) is not None))
        buttons.accepted.connect(dlg.accept)
        buttons.rejected.connect(dlg.reject)
        lay.addWidget(buttons)

        def chosen() -> None:
            item = lst.currentItem()
            if item is not None and item.data(Qt.UserRole) is not None:
                self.target = item.data(Qt.UserRole)
                self._refresh_target()
                self.optimize_target()

        dlg.accepted.connect(chosen)
        dlg.setAttribute(Qt.WA_DeleteOnClose)
        self.windows["choose"] = dlg
        dlg.destroyed.connect(lambda: self.windows.pop("choose", None))
        dlg.show()

    def optimize_target(self) -> None:
        if self.optimize_dialog is not None and self.optimize_dialog.running:
            self.optimize_dialog.show()
            self.optimize_dialog.raise_()
            self.optimize_dialog.activateWindow()
            return
        if self.target is None:
            return
        identity, pid = self.target
        root = pid
        if self._app_root is None:
            try:
                from ..desktop.apps import app_root as root_of
            except ImportError:
                root_of = None
        else:
            root_of = self._app_root
        if root_of is not None:
            try:
                root = root_of(pid)
            except Exception:  # the process tree changed: optimize what was in front
                root = pid
        req = optimizer.Request(pid=root, name=identity.name, goal=self._goal(),
                                analyze_only=self.state == "unavailable",
                                game=getattr(identity, "kind", "") == "game")
        self._start_run(req)

    def _running_profiles(self) -> dict[str, tuple[set[int], str]]:
        """app_id → (pids, live deployment id) of profiled apps running now."""
        manager = getattr(self.session, "profiles", None)
        try:
            return manager.running() if manager is not None else {}
        except Exception as e:  # the watcher stopped: nothing runs as far as we know
            log.warning("profiles: %s", e)
            return {}

    def recheck_profile(self, app_id: str) -> None:
        """Measure a saved profile on its running app with the same A/B trials as an
        optimization: its scheduler against the default (a live deployment of the profile is
        reverted first, and comes back only if it still wins)."""
        if self.optimize_dialog is not None and self.optimize_dialog.running:
            self.optimize_dialog.show()
            self.optimize_dialog.raise_()
            return
        profile = self.store.get(app_id)
        pids, dep_id = self._running_profiles().get(app_id, (set(), ""))
        if profile is None or not pids:
            self.tray.showMessage("SchedCP", "Start the app first: a re-check measures it "
                                  "while it runs.", state_icon(self.state), 6000)
            return
        req = optimizer.Request(pid=min(pids), name=profile.name, goal=profile.goal,
                                max_iterations=1, plan=(profile.policy,
                                                        dict(profile.tunables)),
                                keep=bool(dep_id))
        self._start_run(req, before=(lambda: self.session.revert(dep_id, "re-check"))
                        if dep_id else None)

    def _start_run(self, req: optimizer.Request,
                   before: Callable[[], None] | None = None) -> None:
        """The progress window for one run; ``before`` runs first in the worker thread."""
        from .optimize_dialog import OptimizeDialog

        record = getattr(self.session, "record_step", None)

        def runner(on_step, cancel: threading.Event, on_progress):
            if before is not None:
                before()

            def step(s: dict) -> None:
                s = {**s, "app": req.name, "goal": req.goal}
                if record is not None:  # the history's "why" and "what it measured"
                    try:
                        record(s)
                    except OSError as e:
                        log.warning("cannot record a step: %s", e)
                on_step(s)
            return self._run_optimization(req, self.settings, step, cancel,
                                          client_factory=self._client_factory,
                                          on_progress=on_progress)

        dlg = OptimizeDialog(req, runner, problem=self.problem if req.analyze_only else "")
        dlg.finished_run.connect(lambda: self._optimization_done(dlg))
        dlg.open_history.connect(self.show_history)
        self.optimize_dialog = dlg
        dlg.show()
        dlg.start()
        self._refresh_target()

    def _optimization_done(self, dlg) -> None:
        """A winner was kept: the notification "Applied X for Y: effect" with Revert/Keep."""
        self._refresh_target()
        best = getattr(dlg.result, "best", None) or {}
        announce = getattr(self.session, "announce", None)
        if not best.get("kept") or announce is None:
            if not dlg.isVisible():  # the person closed the window: tell them it ended
                self.tray.showMessage(f"SchedCP: {dlg.request.name}", dlg.summary,
                                      state_icon(self.state), 8000)
            return
        what = best.get("policy", "?")  # tunables: History's details
        from ..measure.effect import describe_effect

        effect = describe_effect(best["evidence"]) if best.get("evidence") else ""
        for s in dlg.steps if not effect else ():
            oc = s.get("outcome") or {}
            if s.get("role") == "execution" and (oc.get("plan") or {}).get(
                    "policy") == best.get("policy") and s.get("improvement") == best.get(
                    "improvement"):
                effect = outcome_sentence(oc, dlg.request.goal)
        if not effect and best.get("improvement") is not None:
            effect = gain_text(best["improvement"])
        try:
            announce(best["kept"], what, dlg.request.name, effect)
        except Exception as e:  # no notification service: the dialog already says it
            log.warning("announce: %s", e)

    def save_profile_for_target(self) -> None:
        if self.target is None:
            return
        ident = self.target[0]
        self.show_profiles(ident.app_id, new=(ident.app_id, ident.name))

    def show_profiles(self, select: str | None = None, new: tuple[str, str] | None = None) -> None:
        from .profiles_dialog import ProfilesDialog

        dlg = self.windows.get("profiles")
        if dlg is None:
            dlg = ProfilesDialog(self.store, self._load_policies(),
                                 default_goal=self.settings.default_goal,
                                 running=lambda: set(self._running_profiles()),
                                 auto_allowed=bool(self.settings.auto_apply_profiles),
                                 set_auto_allowed=self._set_auto_from_profiles)
            dlg.recheck_requested.connect(self.recheck_profile)
            dlg.setAttribute(Qt.WA_DeleteOnClose)
            dlg.destroyed.connect(lambda: self.windows.pop("profiles", None))
            self.windows["profiles"] = dlg
        dlg.show()
        dlg.raise_()
        if new is not None and dlg.store.get(new[0]) is None:
            dlg.add_profile(new[0], new[1], policy=self.current.get("policy") or None)
        elif select:
            dlg.select(select)

    def _load_policies(self) -> dict:
        if self._policies is not None:
            return self._policies()
        try:
            from schedcp_common.policy import default_policies_dir, load_policies

            return load_policies(default_policies_dir())
        except Exception as e:  # the editor falls back to free text
            log.warning("policies: %s", e)
            return {}

    def _history_empty_text(self) -> str:
        """The empty History names the menu item that exists in this state (issue #18)."""
        if self.state == "unavailable":
            return ("Nothing yet. “Analyze” in the tray menu measures the app in front and "
                    "keeps its answer here; schedulers cannot be switched on this computer "
                    "(see “What is missing”).")
        return ("Nothing yet. “Optimize” in the tray menu tries schedulers for the app in "
                "front; what it tries, keeps and undoes is listed here.")

    def show_history(self) -> None:
        from .history_window import HistoryWindow

        win = self.windows.get("history")
        if win is None:
            win = HistoryWindow(self.session.history, empty_text=self._history_empty_text)
            win.setAttribute(Qt.WA_DeleteOnClose)
            win.destroyed.connect(lambda: self.windows.pop("history", None))
            self.windows["history"] = win
        else:
            win.reload()
        win.show()
        win.raise_()

    def show_settings(self) -> None:
        from .settings_dialog import SettingsDialog

        dlg = self.windows.get("settings")
        if dlg is None:
            dlg = SettingsDialog(self.settings, self.settings_path, self._secrets)
            dlg.setAttribute(Qt.WA_DeleteOnClose)
            dlg.destroyed.connect(lambda: self.windows.pop("settings", None))
            dlg.saved.connect(self._refresh_goal)
            self.windows["settings"] = dlg
        dlg.show()
        dlg.raise_()

    def show(self) -> None:
        self.tray.show()

    def quit(self) -> None:
        if self.optimize_dialog is not None and self.optimize_dialog.running:
            self.optimize_dialog.cancel()  # the helper reverts what was not kept
        for closer in (getattr(self.foreground, "stop", None), self.session.close):
            if closer is not None:
                try:
                    closer()
                except Exception as e:
                    log.warning("shutdown: %s", e)
        self.tray.hide()
        QApplication.quit()


def _single_instance() -> object | None:
    """An exclusive lock per user and display: a second tray would show a second icon and
    hold a second helper connection. Returns the open lock file (keep it), or None."""
    import fcntl
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    display = (os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or "none")
    path = Path(base) / f"schedcp-tray-{os.getuid()}-{display.replace('/', '_')}.lock"
    f = path.open("a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def main(argv: list[str] | None = None) -> int:
    """Start the tray. Connecting to the helper happens in the background, so the icon
    appears at once (showing "unavailable" until the helper answers)."""
    ap = argparse.ArgumentParser(prog="schedcp-tray", description=main.__doc__)
    ap.add_argument("--system-bus", help="helper bus address (default: the system bus)")
    ap.add_argument("--no-foreground", action="store_true",
                    help="do not watch the active window")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="schedcp-tray: %(message)s")
    lock = _single_instance()
    if lock is None:
        print("schedcp-tray is already running on this display", file=sys.stderr)
        return 0

    from ..client import HelperClient
    from ..desktop.foreground import ForegroundWatcher
    from ..desktop.notify import Notifier
    from ..desktop.profiles import ProfileStore
    from ..desktop.session import DesktopSession
    from ..desktop.settings import Settings

    app = QApplication(sys.argv[:1])
    app.setApplicationName("SchedCP")
    app.setDesktopFileName("schedcp-tray")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())
    if not QSystemTrayIcon.isSystemTrayAvailable():
        log.warning("no system tray yet; the icon appears when a tray (panel) starts")

    settings = Settings.load()
    store = ProfileStore()

    def factory():
        return HelperClient(args.system_bus)

    session = DesktopSession(client_factory=factory, settings=settings, notifier=Notifier(),
                             store=store)
    tray_app: TrayApp | None = None
    fg = None if args.no_foreground else ForegroundWatcher(
        on_change=lambda ident, pid: tray_app.bridge.on_foreground(ident, pid)
        if tray_app else None)
    tray_app = TrayApp(session, settings, store, foreground=fg, client_factory=factory)
    tray_app.show()
    if fg is not None:
        fg.start()
    threading.Thread(target=session.connect, name="schedcp-connect", daemon=True).start()
    try:
        return app.exec()
    finally:
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
