"""Per-app profiles: which scheduler (and tunables, goal) an app gets when it starts. A list on
the left, an editor on the right built from the policy's declared tunables (labels, bounds,
choices, units, help), so a profile can only hold values the helper would accept.

No traps (issue #18): one per-profile choice of what happens when the app starts (apply /
ask / nothing) with the global "apply automatically" switch shown and changeable right here;
schedulers that are not installed or are kernel demos are marked, the former cannot be
chosen; tunables the helper fills in (ids) are not shown.

"Re-check now" asks the tray to measure a saved profile on its running app
(``recheck_requested``): profiles are kept on evidence, and evidence goes stale when the app or
the machine changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..vocabulary import AUTO_PROFILES, AUTO_PROFILES_HINT, GOAL_LABELS, GOALS
from .icons import app_icon

WHEN = (("auto", "Apply it automatically"), ("ask", "Ask me first"), ("off", "Do nothing"))
NOT_INSTALLED, DEMO = "not installed", "kernel demo, for testing"


def installed(policy: Any) -> bool:
    """Whether a packaged scx_* scheduler's program is where the helper would run it from."""
    if getattr(policy, "kind", "") != "scx":
        return True
    try:
        from schedcp_common.trusted import find_binary

        find_binary(policy.binary)
        return True
    except Exception:  # not installed, or not in a root-owned system folder
        return False


def scheduler_note(policy: Any, is_installed: bool) -> str:
    if not is_installed:
        return NOT_INSTALLED
    return DEMO if getattr(policy, "demo", False) else ""


def _profile_cls():
    from ..desktop.profiles import Profile

    return Profile


class TunablesForm(QWidget):
    """Editors for one policy's tunables; ``values()`` returns only the non-default ones."""

    def __init__(self, policy: Any | None, values: dict, parent=None):
        super().__init__(parent)
        self.policy = policy
        self.editors: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        tunables = {k: t for k, t in (getattr(policy, "tunables", {}) or {}).items()
                    if not getattr(t, "set_by_helper", False)}  # ids: filled in when applied
        if not tunables:
            form.addRow(QLabel("<i>This scheduler has no settings.</i>"))
        for name, t in sorted(tunables.items()):
            value = values.get(name, t.default)
            if t.type == "bool":
                w = QCheckBox()
                w.setChecked(bool(value))
            elif t.type == "enum":
                w = QComboBox()
                w.addItems(list(t.choices))
                w.setCurrentText(str(value))
            elif int(t.min) >= -2**31 and int(t.max) < 2**31:
                w = QSpinBox()
                w.setRange(int(t.min), int(t.max))
                w.setValue(int(value) if isinstance(value, int) else int(t.default))
                if t.unit:
                    w.setSuffix(f" {t.unit}")
                w.setSingleStep(max(1, (int(t.max) - int(t.min)) // 100))
            else:  # beyond a 32-bit spin box: text, checked against the bounds on save
                w = QLineEdit(str(value))
                w.setValidator(QRegularExpressionValidator(QRegularExpression(r"-?\d{1,20}")))
                w.setPlaceholderText(f"{t.min}..{t.max}" + (f" {t.unit}" if t.unit else ""))
            w.setToolTip(t.help)
            title = getattr(t, "title", "") or name.replace("_", " ").capitalize()
            label = QLabel(title + ":")
            label.setToolTip(f"{t.help} ({name})")
            form.addRow(label, w)
            self.editors[name] = w

    def values(self) -> dict:
        out = {}
        tunables = getattr(self.policy, "tunables", {}) or {}
        for name, w in self.editors.items():
            if isinstance(w, QCheckBox):
                v: Any = w.isChecked()
            elif isinstance(w, QComboBox):
                v = w.currentText()
            elif isinstance(w, QLineEdit):
                v = int(w.text()) if w.text().strip() else tunables[name].default
            else:
                v = w.value()
            if v != tunables[name].default:
                out[name] = v
        return out


class ProfilesDialog(QDialog):
    recheck_requested = Signal(str)  # app_id of a saved profile whose app runs now

    def __init__(self, store: Any, policies: dict[str, Any], default_goal: str = "balanced",
                 parent=None, running: Callable[[], set[str]] | None = None, *,
                 auto_allowed: bool = True, set_auto_allowed: Any = None,
                 is_installed: Any = installed):
        """``running()``: the app_ids of profiled apps that run now (re-check needs one)."""
        super().__init__(parent)
        self.store, self.policies, self.default_goal = store, policies, default_goal
        self.running = running or (lambda: set())
        self.set_auto_allowed = set_auto_allowed
        self.installed = {n: bool(is_installed(p)) for n, p in policies.items()}
        self._editing: Any = None
        self._new = False
        self.setWindowTitle("SchedCP Profiles")
        self.setWindowIcon(app_icon())
        self.resize(720, 440)
        lay = QVBoxLayout(self)
        intro = QLabel("A profile gives an app its own scheduler while it runs; the previous "
                       "one comes back when it exits.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        # the global switch, where the per-profile choice is made (it used to override that
        # choice silently from the Settings dialog)
        self.global_auto = QCheckBox(f"{AUTO_PROFILES} ({AUTO_PROFILES_HINT})")
        self.global_auto.setChecked(auto_allowed)
        self.global_auto.toggled.connect(self._global_changed)
        lay.addWidget(self.global_auto)
        split = QSplitter()
        self.list = QListWidget()
        self.list.currentItemChanged.connect(lambda cur, _prev: self._edit(cur))
        split.addWidget(self.list)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        self.app_label = QLabel()
        self.app_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        rl.addWidget(self.app_label)
        form = QFormLayout()
        self.policy = QComboBox()
        # SchedCP's own first, then installed packaged ones, kernel demos, the uninstalled last
        def rank(item):
            n, p = item
            note = scheduler_note(p, self.installed[n])
            return (note == NOT_INSTALLED, note == DEMO, getattr(p, "kind", "") != "bpf", n)

        for name, p in sorted(policies.items(), key=rank):
            note = scheduler_note(p, self.installed[name])
            self.policy.addItem(f"{name} ({note})" if note else name, name)
            i = self.policy.count() - 1
            self.policy.setItemData(i, getattr(p, "summary", ""), Qt.ToolTipRole)
            if note == NOT_INSTALLED:  # cannot run here: shown, not choosable
                self.policy.model().item(i).setEnabled(False)
        self.policy.currentIndexChanged.connect(self._policy_changed)
        form.addRow("&Scheduler:", self.policy)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: palette(mid)")
        form.addRow("", self.summary)
        self.goal = QComboBox()
        for g in GOALS:
            self.goal.addItem(GOAL_LABELS[g], g)
        form.addRow("&Goal:", self.goal)
        self.when = QComboBox()
        for key, text in WHEN:
            self.when.addItem(text, key)
        self.when.currentIndexChanged.connect(lambda _i: self._explain_when())
        form.addRow("&When the app starts:", self.when)
        self.when_note = QLabel()
        self.when_note.setWordWrap(True)
        self.when_note.setStyleSheet("color: #8a5a00")
        form.addRow("", self.when_note)
        rl.addLayout(form)
        self.tun_box = QGroupBox("Scheduler settings")
        self.tun_layout = QVBoxLayout(self.tun_box)
        self.tunables = TunablesForm(None, {})
        self.tun_layout.addWidget(self.tunables)
        rl.addWidget(self.tun_box, 1)
        row = QHBoxLayout()
        self.delete_button = QPushButton("&Delete")
        self.delete_button.clicked.connect(self.delete_current)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        self.recheck_button = QPushButton("&Re-check now")
        self.recheck_button.clicked.connect(self._recheck)
        row.addWidget(self.recheck_button)
        self.save_button = QPushButton("&Save profile")
        self.save_button.clicked.connect(self.save_current)
        row.addWidget(self.save_button)
        rl.addLayout(row)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b3261e")
        self.error.setWordWrap(True)
        rl.addWidget(self.error)
        split.addWidget(right)
        split.setSizes([240, 480])
        lay.addWidget(split, 1)
        close = QDialogButtonBox(QDialogButtonBox.Close)
        close.rejected.connect(self.reject)
        lay.addWidget(close)
        self.reload()

    # -- list ------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        select = select or (self._editing.app_id if self._editing else None)
        self.list.blockSignals(True)
        self.list.clear()
        for p in sorted(self.store.list(), key=lambda p: p.name.lower()):
            when = {"auto": "" if self.global_auto.isChecked() else " · asks first",
                    "ask": " · asks first", "off": " · off"}[p.when]
            item = QListWidgetItem(f"{p.name}\n{p.policy} · {GOAL_LABELS.get(p.goal, p.goal)}"
                                   + when)
            item.setData(Qt.UserRole, p.app_id)
            item.setToolTip(p.name)
            self.list.addItem(item)
        self.list.blockSignals(False)
        if self.list.count():
            self.select(select) if select else self.list.setCurrentRow(0)
        else:
            self._show(None)

    def select(self, app_id: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) == app_id:
                if self.list.currentRow() == i:  # no change signal: show it ourselves
                    self._edit(self.list.item(i))
                self.list.setCurrentRow(i)
                return

    def _edit(self, item: QListWidgetItem | None) -> None:
        p = self.store.get(item.data(Qt.UserRole)) if item is not None else None
        self._new = False
        self._show(p)

    def add_profile(self, app_id: str, name: str, policy: str | None = None) -> None:
        """Start editing a new (unsaved) profile for an app."""
        if policy not in self.policies:  # one of ours that serves the default goal
            fitting = [n for n, pol in sorted(self.policies.items())
                       if getattr(pol, "kind", "") == "bpf"
                       and self.default_goal in getattr(pol, "goals", ())]
            policy = next(iter(fitting or sorted(self.policies)), "")
        p = _profile_cls()(app_id=app_id, name=name, policy=policy or "",
                           goal=self.default_goal, auto_apply=True)
        self.list.clearSelection()
        self._new = True
        self._show(p)

    # -- editor ------------------------------------------------------------------------------
    def _show(self, p: Any) -> None:
        self._editing = p
        self.error.clear()
        enabled = p is not None
        for w in (self.policy, self.goal, self.when, self.tun_box, self.save_button,
                  self.delete_button, self.recheck_button):
            w.setEnabled(enabled)
        if p is None:
            self.app_label.setText("<i>No profile selected. Use “Save profile for …” in the "
                                   "tray menu while the app is in front.</i>")
            self.app_label.setWordWrap(True)
            return
        self.delete_button.setEnabled(not self._new)
        self._refresh_recheck()
        self.app_label.setText(f"<b>{p.name}</b>" + (" <i>(new)</i>" if self._new else ""))
        self.app_label.setToolTip(p.app_id)  # how it is recognised: for the curious only
        self.goal.setCurrentIndex(max(0, self.goal.findData(p.goal)))
        self.when.setCurrentIndex(max(0, self.when.findData(p.when)))
        self._explain_when()
        self.policy.blockSignals(True)
        idx = self.policy.findData(p.policy)
        if idx < 0 and p.policy:
            self.policy.addItem(p.policy, p.policy)
            idx = self.policy.count() - 1
        self.policy.setCurrentIndex(idx)
        self.policy.blockSignals(False)
        self._policy_changed(values=dict(p.tunables))

    def _refresh_recheck(self) -> None:
        p = self._editing
        try:
            runs = p is not None and p.app_id in self.running()
        except Exception:  # the watcher is gone: nothing to measure on
            runs = False
        self.recheck_button.setEnabled(bool(runs and not self._new))
        self.recheck_button.setToolTip(
            "Measure this profile's scheduler against the default on the running app, in "
            "alternating runs, and show the effect with its interval. The profile stays "
            "applied only if it still helps." if runs and not self._new else
            "Save the profile first." if self._new else
            "Start the app first: a re-check measures it while it runs.")

    def _recheck(self) -> None:
        if self._editing is not None and not self._new:
            self.recheck_requested.emit(self._editing.app_id)

    def _policy_changed(self, *_args, values: dict | None = None) -> None:
        name = self.policy.currentData()
        pol = self.policies.get(name)
        self.summary.setText(getattr(pol, "summary", "") if pol else "")
        self.tun_layout.removeWidget(self.tunables)
        self.tunables.deleteLater()
        self.tunables = TunablesForm(pol, values or {})
        self.tun_layout.addWidget(self.tunables)

    def save_current(self) -> bool:
        p = self._editing
        if p is None:
            return False
        name = self.policy.currentData() or ""
        values = self.tunables.values()
        pol = self.policies.get(name)
        try:
            if pol is not None:
                pol.validate_tunables(values)
            when = self.when.currentData()
            new = _profile_cls()(app_id=p.app_id, name=p.name, policy=name, tunables=values,
                                 goal=self.goal.currentData(), auto_apply=when == "auto",
                                 enabled=when != "off")
            self.store.put(new)
        except Exception as e:  # PolicyError / ValueError / OSError: say it, keep editing
            self.error.setText(str(e))
            return False
        self._new = False
        self._editing = new
        self.reload(new.app_id)
        return True

    def _explain_when(self) -> None:
        """Say it when the global switch changes what this profile's choice does."""
        note = ""
        if self.when.currentData() == "auto" and not self.global_auto.isChecked():
            note = ("Automatic applying is off for every app (the switch above), so this "
                    "profile asks first.")
        self.when_note.setText(note)
        self.when_note.setVisible(bool(note))

    def _global_changed(self, on: bool) -> None:
        if self.set_auto_allowed is not None:
            self.set_auto_allowed(on)
        self._explain_when()
        self.reload()

    def delete_current(self) -> None:
        p = self._editing
        if p is None or self._new:
            return
        ok = QMessageBox.question(self, "Delete profile",
                                  f"Delete the profile for {p.name}?") == QMessageBox.Yes
        if ok:
            self.delete_without_asking()

    def delete_without_asking(self) -> None:
        if self._editing is not None:
            self.store.delete(self._editing.app_id)
            self._editing = None
            self.reload()
