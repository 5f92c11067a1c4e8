"""State icons (one SVG per tray state in resources/icons) and the app icon, with a drawn
fallback so a broken install still shows a recognisable, state-coloured icon."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

FALLBACK_COLOURS = {"default": "#5f6670", "optimized": "#23955a", "canary": "#c98a00",
                    "attention": "#d83b3b", "unavailable": "#8a9099", "app": "#3b6fd8"}


def resources_dir() -> Path | None:
    """$SCHEDCP_RESOURCES, the source checkout's resources/, or the packaged copy."""
    candidates = [os.environ.get("SCHEDCP_RESOURCES", ""),
                  str(Path(__file__).resolve().parents[3] / "resources"),
                  "/usr/share/schedcp/resources"]
    for c in candidates:
        if c and (Path(c) / "icons").is_dir():
            return Path(c)
    return None


def _drawn(colour: str) -> QIcon:
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        pm = QPixmap(size, size)
        pm.fill(Qt.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.Antialiasing)
        p.setBrush(QColor(colour))
        p.setPen(Qt.NoPen)
        p.drawRoundedRect(QRectF(0.06 * size, 0.06 * size, 0.88 * size, 0.88 * size),
                          0.2 * size, 0.2 * size)
        p.setBrush(QColor("white"))
        for i, w in enumerate((0.47, 0.56, 0.31)):
            p.drawRoundedRect(QRectF(0.22 * size, (0.28 + 0.17 * i) * size, w * size,
                                     0.11 * size), 0.05 * size, 0.05 * size)
        p.end()
        icon.addPixmap(pm)
    return icon


@cache
def state_icon(state: str) -> QIcon:
    base = resources_dir()
    path = base / "icons" / f"schedcp-{state}.svg" if base else None
    if path and path.is_file():
        icon = QIcon(str(path))
        if not icon.isNull():
            return icon
    return _drawn(FALLBACK_COLOURS.get(state, FALLBACK_COLOURS["default"]))


@cache
def app_icon() -> QIcon:
    base = resources_dir()
    if base and (base / "schedcp.svg").is_file():
        return QIcon(str(base / "schedcp.svg"))
    themed = QIcon.fromTheme("schedcp")
    return themed if not themed.isNull() else _drawn(FALLBACK_COLOURS["app"])
