"""Settings: default goal, the agent's brain (offline; Claude, with model, budget and the API
key, which goes to the keyring and never into a file; or a local model behind an
OpenAI-compatible server, with its address, model name and token budget), auto-apply profiles,
start at login.
Storage is ``desktop.settings``; this dialog only edits and reports its errors inline."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from ..pricing import DEFAULT_LOCAL_URL, MODELS
from ..vocabulary import AUTO_PROFILES, AUTO_PROFILES_HINT, GOAL_HINTS, GOAL_LABELS, GOALS
from .icons import app_icon


def _secrets_module():
    from ..desktop import settings

    return settings


class SettingsDialog(QDialog):
    saved = Signal()

    def __init__(self, settings: Any, path: Path | None = None, secrets: Any = None,
                 parent=None):
        super().__init__(parent)
        self.settings, self.path = settings, path
        self.secrets = secrets or _secrets_module()
        self._key_cleared = False
        self.old_start_at_login = bool(settings.start_at_login)
        self.setWindowTitle("SchedCP Settings")
        self.setWindowIcon(app_icon())
        self.setMinimumWidth(460)
        lay = QVBoxLayout(self)

        general = QGroupBox("General")
        form = QFormLayout(general)
        self.goal = QComboBox()
        for g in GOALS:
            self.goal.addItem(f"{GOAL_LABELS[g]} — {GOAL_HINTS[g]}", g)
        self.goal.setCurrentIndex(max(0, self.goal.findData(settings.default_goal)))
        form.addRow("Default &goal:", self.goal)
        self.auto_apply = QCheckBox(f"{AUTO_PROFILES} ({AUTO_PROFILES_HINT})")
        self.auto_apply.setChecked(bool(settings.auto_apply_profiles))
        form.addRow(self.auto_apply)
        self.start_at_login = QCheckBox("Start SchedCP at &login")
        self.start_at_login.setChecked(bool(settings.start_at_login))
        form.addRow(self.start_at_login)
        lay.addWidget(general)

        agent = QGroupBox("Optimization agent")
        form = QFormLayout(agent)
        self.brain = QComboBox()
        self.brain.addItem("Offline planner — no network, no key", "offline")
        self.brain.addItem("Claude — Anthropic API, uses your key", "claude")
        self.brain.addItem("Local model — an OpenAI-compatible server (Ollama, llama.cpp)",
                           "openai")
        self.brain.setCurrentIndex(max(0, self.brain.findData(settings.brain)))
        self.brain.currentIndexChanged.connect(self._brain_changed)
        form.addRow("&Brain:", self.brain)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(list(MODELS))
        self.model.setCurrentText(settings.model)
        form.addRow("&Model:", self.model)
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0.01, 100.0)
        self.budget.setDecimals(2)
        self.budget.setSingleStep(0.25)
        self.budget.setPrefix("$ ")
        self.budget.setValue(float(settings.budget_usd))
        self.budget.setToolTip("The agent stops when one optimization has cost this much")
        form.addRow("B&udget per optimization:", self.budget)
        row = QHBoxLayout()
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.Password)
        self.api_key.setClearButtonEnabled(True)
        row.addWidget(self.api_key, 1)
        self.clear_key = QPushButton("Remove")
        self.clear_key.setToolTip("Delete the key from the keyring")
        self.clear_key.clicked.connect(self._remove_key)
        row.addWidget(self.clear_key)
        key_label = QLabel("Anthropic API &key:")
        key_label.setBuddy(self.api_key)
        form.addRow(key_label, row)
        self.key_status = QLabel()
        self.key_status.setWordWrap(True)
        form.addRow("", self.key_status)
        self.local_url = QLineEdit(settings.local_url)
        self.local_url.setPlaceholderText(DEFAULT_LOCAL_URL)
        self.local_url.setToolTip("The server's OpenAI-compatible address; on this machine "
                                  "the process list never leaves it")
        form.addRow("Local &server:", self.local_url)
        self.local_model = QLineEdit(settings.local_model)
        self.local_model.setPlaceholderText("the server's model name, e.g. qwen3:8b")
        form.addRow("Local m&odel:", self.local_model)
        self.budget_tokens = QSpinBox()
        self.budget_tokens.setRange(1000, 100_000_000)
        self.budget_tokens.setSingleStep(100_000)
        self.budget_tokens.setGroupSeparatorShown(True)
        self.budget_tokens.setSuffix(" tokens")
        self.budget_tokens.setValue(int(settings.budget_tokens))
        self.budget_tokens.setToolTip("The local agent stops when one optimization has used "
                                      "this many tokens")
        form.addRow("&Token budget per optimization:", self.budget_tokens)
        lay.addWidget(agent)
        self._load_key_state()
        self._brain_changed()

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b3261e")
        self.error.setVisible(False)
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        lay.addWidget(buttons)

    def _load_key_state(self) -> None:
        self.has_key = False
        status = getattr(self.secrets, "secrets_status", None)
        try:
            ok, why = status() if status is not None else (True, "")
            self.has_key = ok and bool(self.secrets.get_api_key())
        except Exception as e:  # a broken backend: the message says what is wrong
            ok, why = False, str(e)
        self.keyring_ok = ok
        if ok:
            self.api_key.setPlaceholderText("stored in the keyring — type to replace"
                                            if self.has_key else "sk-ant-…")
            self.key_status.setText("Kept in your keyring (Secret Service), never in a file.")
        else:  # SecretsUnavailable's text says how to fix it
            self.api_key.setPlaceholderText("keyring unavailable")
            why = why[:1].upper() + why[1:]
            self.key_status.setText(f"<span style='color:#a23b16'>{why}</span>")
        self.clear_key.setEnabled(self.has_key)

    def _brain_changed(self) -> None:
        brain = self.brain.currentData()
        for w in (self.model, self.budget, self.api_key, self.clear_key):
            w.setEnabled(brain == "claude" and (w is not self.clear_key or self.has_key))
        for w in (self.local_url, self.local_model, self.budget_tokens):
            w.setEnabled(brain == "openai")

    def _remove_key(self) -> None:
        self._key_cleared = True
        self.api_key.clear()
        self.api_key.setPlaceholderText("will be removed when you save")
        self.clear_key.setEnabled(False)

    def _fail(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(True)

    def save(self) -> None:
        """Validate and store; on an error the dialog stays open with the message (a bad
        value is refused before the key or the autostart entry is touched)."""
        new = copy.copy(self.settings)
        new.default_goal = self.goal.currentData()
        # a goal changed here is the user's choice: the power profile no longer overrides it
        new.goal_chosen = (self.settings.goal_chosen
                           or new.default_goal != self.settings.default_goal)
        new.brain = self.brain.currentData()
        new.model = self.model.currentText().strip()
        new.budget_usd = round(self.budget.value(), 2)
        new.local_url = self.local_url.text().strip() or DEFAULT_LOCAL_URL
        new.local_model = self.local_model.text().strip()
        new.budget_tokens = int(self.budget_tokens.value())
        new.auto_apply_profiles = self.auto_apply.isChecked()
        new.start_at_login = self.start_at_login.isChecked()
        key = self.api_key.text().strip()
        if new.brain == "claude" and not key and (not self.has_key or self._key_cleared):
            self._fail("The Claude brain needs an API key (or choose the offline planner).")
            return
        if new.brain == "openai" and not new.local_model:
            self._fail("The local brain needs the server's model name (e.g. qwen3:8b; "
                       "`ollama list` shows them).")
            return
        try:
            new.save(self.path)  # validates first: a bad value changes nothing else
        except (OSError, ValueError) as e:
            self._fail(str(e))
            return
        for k, v in vars(new).items():  # saved: in force from now on, whatever follows
            setattr(self.settings, k, v)
        try:
            if key or self._key_cleared:
                self.secrets.set_api_key(key or None)
            if new.start_at_login != bool(self.old_start_at_login):
                self.secrets.set_autostart(new.start_at_login)
        except Exception as e:  # SecretsUnavailable (says how to fix), OSError
            self._fail(f"Settings saved, but: {e}")
            return
        self.old_start_at_login = new.start_at_login
        self.api_key.clear()
        self.saved.emit()
        self.accept()
