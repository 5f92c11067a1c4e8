"""Progress of one optimization: each agent step as it happens, a progress bar over the
iterations, and Cancel (the loop's Event: it stops between steps and reverts what it tried
unless that was kept). Closing the window leaves the run going; the tray menu reopens it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QStyle,
    QVBoxLayout,
)

from ..desktop.optimizer import OptimizeError, Request
from ..vocabulary import GOAL_LABELS
from .bridge import Bridge
from .icons import app_icon
from .wording import STOP_TITLES, step_line

KIND_ICONS = {"observe": QStyle.SP_FileDialogContentsView, "plan": QStyle.SP_ArrowRight,
              "good": QStyle.SP_DialogApplyButton, "bad": QStyle.SP_MessageBoxWarning,
              "neutral": QStyle.SP_DialogNoButton, "stop": QStyle.SP_DialogOkButton,
              "error": QStyle.SP_MessageBoxCritical}
KIND_COLOURS = {"good": "#1d7f4c", "bad": "#a23b16", "error": "#b3261e"}

# runner(on_step, cancel, on_progress) -> LoopResult; on_progress(stage, message)
Runner = Callable[[Callable[[dict], None], threading.Event, Callable[[str, str], None]], Any]


def recheck_verdict(result: Any, request: Request) -> tuple[str, str]:
    """A profile re-check's title and sentence: the effect with its interval and runs, or
    why there is none, and whether the profile's scheduler stays."""
    from ..agent.fixed import summary

    s = summary(result)
    policy = request.plan[0] if request.plan else "?"
    if not s["effect"]:
        why = s["error"] or s["message"] or result.message
        return "Re-check not measured", f"{policy}: {why}"
    stays = ("It stays applied." if s["kept"] else
             "It was not kept: the app runs on the default until it next starts."
             if request.keep else "Nothing was changed.")
    title = {"improved": "Still helps", "regressed": "Now hurts"}.get(
        s["decision"] or "", "No measurable effect")
    return title, f"{policy}: {s['effect']}. {stays}"


class OptimizeDialog(QDialog):
    finished_run = Signal()  # after the result is shown
    open_history = Signal()

    def __init__(self, request: Request, runner: Runner, problem: str = "", parent=None):
        super().__init__(parent)
        self.request, self.runner = request, runner
        self.cancel_event = threading.Event()
        self.running = False
        self.result: Any = None
        self.error = ""
        self.summary = ""
        self.steps: list[dict] = []
        self._trying = ""
        self._t0 = 0.0
        self._thread: threading.Thread | None = None
        self.bridge = Bridge(self)
        self.bridge.step.connect(self._on_step)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.progress.connect(self._on_progress)

        verb = ("Analyzing" if request.analyze_only else
                "Re-checking" if request.plan is not None else "Optimizing")
        self.setWindowTitle(f"{verb} {request.name} — SchedCP")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(560, 380)
        lay = QVBoxLayout(self)
        title = QLabel(f"{verb} <b>{request.name}</b> for "
                       f"{GOAL_LABELS.get(request.goal, request.goal).lower()}")
        f = QFont(title.font())
        f.setPointSizeF(f.pointSizeF() * 1.2)
        title.setFont(f)
        lay.addWidget(title)
        self.status = QLabel("Measuring the app under the current scheduler…")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        if problem:
            note = QLabel(f"<i>Only measuring, nothing will change.</i> {problem}")
            note.setWordWrap(True)
            lay.addWidget(note)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy until the first step says how far we are
        self.progress.setTextVisible(False)
        row.addWidget(self.progress, 1)
        self.elapsed = QLabel("0 s")
        self.elapsed.setMinimumWidth(48)
        self.elapsed.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        row.addWidget(self.elapsed)
        lay.addLayout(row)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        lay.addWidget(self.list, 1)
        self.buttons = QDialogButtonBox()
        self.history_button = QPushButton("Open History")
        self.history_button.setVisible(False)
        self.history_button.clicked.connect(self.open_history)
        self.buttons.addButton(self.history_button, QDialogButtonBox.ActionRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.Cancel)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = self.buttons.addButton(QDialogButtonBox.Close)
        self.close_button.clicked.connect(self.hide)
        self.close_button.setVisible(False)
        lay.addWidget(self.buttons)
        self.timer = QTimer(self)  # ticks only while a run is going
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._tick)

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self._t0 = time.monotonic()
        self.timer.start()

        def work() -> None:
            result, error = None, ""
            try:
                result = self.runner(self.bridge.step.emit, self.cancel_event,
                                     self.bridge.progress.emit)
            except OptimizeError as e:
                error = str(e)
            except Exception as e:  # shown in the dialog, never a silent dead thread
                error = f"{type(e).__name__}: {e}"
            self.bridge.finished.emit(result, error)

        self._thread = threading.Thread(target=work, name="schedcp-optimize", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        if not self.running:
            self.hide()
            return
        self.cancel_event.set()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.status.setText("Cancelling: finishing the current step, then putting back the "
                            "scheduler that ran before…")

    def closeEvent(self, event) -> None:
        """Closing the window only hides it: the run goes on (the tray menu shows it again);
        Cancel is the explicit way to stop."""
        super().closeEvent(event)

    def wait(self, timeout: float | None = None) -> bool:
        """Join the worker (tests, quit)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- updates (Qt thread) -------------------------------------------------------------------
    def _tick(self) -> None:
        s = int(time.monotonic() - self._t0)
        self.elapsed.setText(f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s")

    def _on_step(self, step: dict) -> None:
        if step.get("role") == "trial":  # one A/B run done: the status line, not the list
            if not self.cancel_event.is_set():
                self.status.setText(f"Measuring {self._trying}: {step.get('line', '')}")
            return
        self.steps.append(step)
        it = int(step.get("iteration") or 0)
        total = max(1, self.request.max_iterations)
        if step.get("role") == "observation":
            if self.request.analyze_only:
                self.progress.setRange(0, 1)
                self.progress.setValue(1)
            else:
                self.progress.setRange(0, total)
                self.progress.setValue(0)
        elif step.get("role") == "learning":
            self.progress.setRange(0, total)
            self.progress.setValue(min(it, total))
        line = step_line(step, self.request.goal)
        if line is None:
            return
        kind, text = line
        if kind == "stop" and self.request.analyze_only and step.get("reason") == \
                "max_iterations":
            text = "Analysis finished; nothing was changed"
        if step.get("role") == "planning" and not self.cancel_event.is_set():
            self._trying = ((step.get("plan") or {}).get("policy") or "")
            self.status.setText(f"Step {it} of up to {total}: verifying and trying "
                                f"{self._trying}…")
        elif step.get("role") == "observation" and not self.cancel_event.is_set():
            self.status.setText("Measured the app under the current scheduler.")
        prefix = f"{it}. " if step.get("role") in ("planning", "execution") and it else ""
        item = QListWidgetItem(self.style().standardIcon(KIND_ICONS.get(kind,
                               QStyle.SP_MessageBoxInformation)), prefix + text)
        if kind in KIND_COLOURS:
            item.setForeground(QColor(KIND_COLOURS[kind]))
        if kind == "stop":
            f = QFont(item.font())
            f.setBold(True)
            item.setFont(f)
        item.setData(Qt.UserRole, step)
        self.list.addItem(item)
        self.list.scrollToBottom()

    def _on_progress(self, stage: str, message: str) -> None:
        if self.running and not self.cancel_event.is_set():
            what = f" {self._trying}" if self._trying else ""
            self.status.setText(f"Verifying{what}: {stage}" + (f" — {message}" if message
                                                                else ""))

    def _on_finished(self, result: Any, error: str) -> None:
        self.running = False
        self.result, self.error = result, error
        self.timer.stop()
        self._tick()
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        if error:
            self.summary = f"Could not run. {error}"
            self.status.setText(f"<b>Could not run.</b> {error}")
        elif result is not None:
            title = STOP_TITLES.get(result.stop_reason, result.stop_reason)
            message = result.message
            if self.request.analyze_only and result.stop_reason == "max_iterations":
                said = next((s for s in self.steps if s.get("role") == "analysis"), None)
                title, message = "Analysis done", (
                    f"{said.get('verdict', '')} Nothing was changed." if said else
                    "The measurements are below; nothing changed.")
            elif self.request.plan is not None:  # a re-check: its effect is the answer
                title, message = recheck_verdict(result, self.request)
            self.summary = f"{title}. {message}"
            self.status.setText(f"<b>{title}.</b> {message}")
            self.history_button.setVisible(not self.request.analyze_only and (
                bool(result.best) or result.stop_reason not in ("cancelled", "error")))
        self.cancel_button.setVisible(False)
        self.close_button.setVisible(True)
        self.close_button.setDefault(True)
        self.finished_run.emit()
