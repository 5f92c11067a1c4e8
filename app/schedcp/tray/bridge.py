"""Re-posts callbacks from ``schedcp.desktop`` (which may call from any thread: the D-Bus
loop, the exec watcher, the X11 watcher) onto the Qt thread as queued signals."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Bridge(QObject):
    session_event = Signal(str, dict)  # DesktopSession listener: (kind, info)
    foreground = Signal(object, object)  # (AppIdentity | None, pid | None)
    step = Signal(dict)  # one OptimizationLoop step record
    finished = Signal(object, str)  # (LoopResult | None, error message)
    progress = Signal(str, str)  # the helper's VerifyProgress: (stage, message)

    # Plain methods, safe to call from any thread: emitting a signal of an object living in
    # the Qt thread queues the delivery to that thread (AutoConnection).
    def on_session(self, kind: str, info: dict) -> None:
        self.session_event.emit(kind, dict(info or {}))

    def on_foreground(self, identity, pid) -> None:
        self.foreground.emit(identity, pid)
