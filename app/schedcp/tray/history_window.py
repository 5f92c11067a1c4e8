"""History: every deployment (what changed, why, the measured effect, how it ended) and, for
the selected one, before/after plots of its feedback metrics (QtCharts): the agent's before
and after measurements as bars, the canary's samples over time against the baseline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape as html_escape

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QLineSeries,
    QValueAxis,
)
from PySide6.QtCore import QMargins, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..vocabulary import GOAL_LABELS, metric_label, value_text
from .icons import app_icon
from .records import HistoryEntry, entries
from .wording import METRIC_LABELS

COLUMNS = ("When", "App", "Change", "Effect", "Outcome")
EMPTY = ("Nothing yet. “Optimize” in the tray menu tries schedulers for the app in front; "
         "what it tries, keeps and undoes is listed here.")
BEFORE, AFTER = QColor("#8a9099"), QColor("#23955a")
SHORT_LABELS = {k: f"{label} ({unit})" for k, (label, unit) in METRIC_LABELS.items()}


def _clip(text: str, n: int = 48) -> str:
    """A column's text; the whole of it is in the tooltip and the details."""
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def _chart(title: str) -> QChart:
    c = QChart()
    c.setTitle(title)
    c.setAnimationOptions(QChart.NoAnimation)
    c.legend().setAlignment(Qt.AlignBottom)
    c.setMargins(QMargins(4, 4, 4, 4))
    c.setBackgroundRoundness(4)
    return c


def before_after_chart(e: HistoryEntry) -> QChart | None:
    keys = [k for k in METRIC_LABELS if k in e.before and k in e.after]
    if not keys:
        return None
    c = _chart("Before and after (lower is better)")
    s_before, s_after = QBarSet("Before"), QBarSet("After")
    s_before.setColor(BEFORE)
    s_after.setColor(AFTER)
    for k in keys:
        s_before.append(e.before[k])
        s_after.append(e.after[k])
    series = QBarSeries()
    series.append(s_before)
    series.append(s_after)
    series.setLabelsVisible(True)
    series.setLabelsFormat("@value")
    series.setLabelsPrecision(3)  # significant digits: 17.6, not 17.6493
    c.addSeries(series)
    ax = QBarCategoryAxis()
    ax.append([SHORT_LABELS[k] for k in keys])
    ay = QValueAxis()
    ay.setRange(0, max(max(e.before[k], e.after[k]) for k in keys) * 1.15 or 1)
    ay.applyNiceNumbers()
    ay.setLabelFormat("%.3g")
    c.addAxis(ax, Qt.AlignBottom)
    c.addAxis(ay, Qt.AlignLeft)
    series.attachAxis(ax)
    series.attachAxis(ay)
    return c


def samples_chart(e: HistoryEntry) -> QChart | None:
    if not e.samples:
        return None
    c = _chart("Reported during the canary")
    line = QLineSeries()
    line.setName("measured")
    line.setPen(QPen(AFTER, 2))
    for t, v in e.samples:
        line.append(t, v)
    c.addSeries(line)
    xs = [t for t, _ in e.samples]
    top = max(v for _, v in e.samples)
    base = None
    if e.baseline is not None:
        base = QLineSeries()
        base.setName("before (baseline)")
        pen = QPen(BEFORE, 2)
        pen.setStyle(Qt.DashLine)
        base.setPen(pen)
        base.append(min(xs), e.baseline)
        base.append(max(xs), e.baseline)
        c.addSeries(base)
        top = max(top, e.baseline)
    ax, ay = QValueAxis(), QValueAxis()
    ax.setTitleText("seconds after the switch")
    ax.setLabelFormat("%.0f")
    ax.setRange(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    ay.setRange(0, top * 1.15 or 1)
    ay.applyNiceNumbers()
    ay.setLabelFormat("%.3g")
    ay.setTitleText("reported metric")
    c.addAxis(ax, Qt.AlignBottom)
    c.addAxis(ay, Qt.AlignLeft)
    for s in (line, base):
        if s is not None:
            s.attachAxis(ax)
            s.attachAxis(ay)
    return c


def detail_html(e: HistoryEntry, technical: bool = False) -> str:
    """The selected row in plain words; ``technical`` (the Details toggle) adds what only an
    expert reads: tunables, the deployment id, the planner's reasoning, the helper's words."""
    measured = "; ".join(
        f"{metric_label(k)} {value_text(k, e.before[k])} → {value_text(k, e.after[k])}"
        for k in METRIC_LABELS if k in e.before and k in e.after)
    rows = [("Scheduler", f"{e.previous or 'default'} → {e.policy or '?'}"),
            ("Goal", GOAL_LABELS.get(e.goal, e.goal or "—")), ("Measured", measured or "—"),
            ("Effect", e.effect), ("Outcome", e.plain_outcome)]
    if technical:
        tun = ", ".join(f"{k}={v}" for k, v in sorted(e.tunables.items())) or "defaults"
        rows += [("Tunables", tun), ("Deployment", e.id or "—"),
                 ("Helper's reason", e.reason or "—"), ("Planner", e.why or "—")]
    return "<table cellspacing=4>" + "".join(
        f"<tr><td><b>{k}</b></td><td>{html_escape(str(v))}</td></tr>"
        for k, v in rows) + "</table>"


class HistoryWindow(QWidget):
    _loaded = Signal(list, str)  # (records, error) from the loading thread

    def __init__(self, load: Callable[[], list[dict]], parent=None,
                 empty_text: Callable[[], str] | None = None):
        super().__init__(parent, Qt.Window)
        self.load = load
        self.empty_text = empty_text or (lambda: EMPTY)
        self.loading = False
        self._loaded.connect(self._show_rows)
        self.rows: list[HistoryEntry] = []
        self.setWindowTitle("SchedCP History")
        self.setWindowIcon(app_icon())
        self.resize(900, 620)
        lay = QVBoxLayout(self)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        # the Change column keeps its tunables (they tell rows apart); the effect sentence
        # takes the rest and its whole text is in the tooltip and the details
        self.tree.header().setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.tree.header().setSectionResizeMode(3, QHeaderView.Stretch)
        self.tree.currentItemChanged.connect(lambda cur, _p: self._select(cur))
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.tree)
        bottom = QWidget()
        bl = QHBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        self.detail = QTextBrowser()
        self.detail.setOpenLinks(False)
        self.detail.setMinimumWidth(260)
        bl.addWidget(self.detail, 3)
        self.charts = QStackedWidget()
        self.no_data = QLabel("No measurements were recorded for this deployment.")
        self.no_data.setAlignment(Qt.AlignCenter)
        self.no_data.setWordWrap(True)
        self.charts.addWidget(self.no_data)
        self.chart_box = QWidget()
        self.chart_layout = QHBoxLayout(self.chart_box)
        self.chart_layout.setContentsMargins(0, 0, 0, 0)
        self.charts.addWidget(self.chart_box)
        bl.addWidget(self.charts, 8)
        split.addWidget(bottom)
        split.setSizes([170, 430])
        lay.addWidget(split, 1)
        self.message = QLabel()
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        refresh = QPushButton("&Refresh")
        refresh.clicked.connect(self.reload)
        buttons.addButton(refresh, QDialogButtonBox.ActionRole)
        # the jargon (tunables, ids, the planner's reasoning, the helper's words) waits here
        self.details = QPushButton("&Details")
        self.details.setCheckable(True)
        self.details.setToolTip("Show the technical details of the selected row")
        self.details.toggled.connect(lambda _on: self._select(self.tree.currentItem()))
        buttons.addButton(self.details, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.chart_views: list[QChartView] = []
        self.reload()

    def reload(self) -> None:
        """Ask for the history in a worker thread (a D-Bus call must never freeze the UI);
        the rows appear when it answers."""
        self.message.setText("Loading…")
        self.loading = True

        def work() -> None:
            try:
                self._loaded.emit(self.load(), "")
            except Exception as e:  # no helper: show why, keep the window usable
                self._loaded.emit([], str(e))

        threading.Thread(target=work, name="schedcp-history", daemon=True).start()

    def _show_rows(self, raws: list, error: str) -> None:
        keep = self.current_id()
        self.loading = False
        self.rows = entries(raws)
        if error:
            self.message.setText(f"Could not read the history: {error}")
        else:
            self.message.setText("" if self.rows else self.empty_text())
        self.tree.clear()
        for r in self.rows:
            item = QTreeWidgetItem([r.when, r.app or "—", r.change, r.effect,
                                    _clip(r.plain_outcome)])
            item.setToolTip(2, r.change)  # the planner's reasoning: under Details
            item.setToolTip(3, r.effect)
            item.setToolTip(4, r.plain_outcome)
            if r.improvement is not None:
                item.setForeground(3, QColor("#1d7f4c" if r.improvement > 0 else "#a23b16"))
            self.tree.addTopLevelItem(item)
        for col in (0, 1, 3, 4):
            self.tree.resizeColumnToContents(col)
        if self.rows:
            idx = next((i for i, r in enumerate(self.rows) if r.id and r.id == keep), 0)
            self.tree.setCurrentItem(self.tree.topLevelItem(idx))
        else:
            self._select(None)

    def current_id(self) -> str:
        i = self.tree.indexOfTopLevelItem(self.tree.currentItem()) if self.tree.currentItem() \
            else -1
        return self.rows[i].id if 0 <= i < len(self.rows) else ""

    def _select(self, item: QTreeWidgetItem | None) -> None:
        for v in self.chart_views:
            self.chart_layout.removeWidget(v)
            v.deleteLater()
        self.chart_views = []
        i = self.tree.indexOfTopLevelItem(item) if item is not None else -1
        if not 0 <= i < len(self.rows):
            self.detail.setHtml("")
            self.charts.setCurrentWidget(self.no_data)
            return
        e = self.rows[i]
        self.detail.setHtml(detail_html(e, self.details.isChecked()))
        for chart in (before_after_chart(e), samples_chart(e)):
            if chart is not None:
                view = QChartView(chart)
                view.setRenderHint(QPainter.Antialiasing)
                view.setMinimumSize(240, 220)
                self.chart_layout.addWidget(view)
                self.chart_views.append(view)
        self.charts.setCurrentWidget(self.chart_box if self.chart_views else self.no_data)
