"""Notifications through a real dunst on a private session bus; actions invoked through the
daemon's own menu (as a person picks them)."""

from __future__ import annotations

import threading
import time

from schedcp.desktop.notify import Notifier
from tests.desktop_stack import session_bus


def test_notification_with_actions_and_invoked_action(dunst, bus):
    n = Notifier(bus)
    try:
        assert n.available, n.problem
        assert n.server[0] == "dunst" and n.actions_supported
        got: list[str] = []
        done = threading.Event()

        def on_action(key):
            got.append(key)
            done.set()

        t0 = time.monotonic()
        nid = n.notify("Applied scx_simple for Probe: p99 wait \u221235 %", "body text",
                       {"revert": "Revert", "keep": "Keep"}, on_action)
        shown = dunst.wait_for(lambda s: s.id == nid)
        shown_s = time.monotonic() - t0
        assert shown.summary.startswith("Applied scx_simple for Probe")
        assert shown.actions == {"revert": "Revert", "keep": "Keep"}
        assert shown.app_name == "SchedCP"
        assert dunst.displayed() >= 1
        t1 = time.monotonic()
        dunst.invoke(nid, "revert")
        assert done.wait(5), "on_action never ran"
        action_s = time.monotonic() - t1
        assert got == ["revert"]
        # a second notification's action reaches its own callback only
        other: list[str] = []
        nid2 = n.notify("Second", actions={"apply": "Apply"}, on_action=other.append)
        dunst.wait_for(lambda s: s.id == nid2)
        dunst.invoke(nid2, "apply")
        deadline = time.monotonic() + 5
        while not other and time.monotonic() < deadline:
            time.sleep(0.01)
        assert other == ["apply"] and got == ["revert"]
        n.close_notification(nid2)
        dunst.wait_for(lambda s: s.id == nid2 and s.closed is not None)
        print(f"\nnotify → recorded {shown_s * 1000:.1f} ms; action → callback "
              f"{action_s * 1000:.1f} ms")
    finally:
        n.close()


def test_unavailable_without_bus_or_daemon(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    n = Notifier()
    assert not n.available and "no session bus" in n.problem
    assert n.notify("x") == 0
    n.close()
    with session_bus() as empty:  # a bus with no notification daemon on it
        t0 = time.monotonic()
        n = Notifier(empty)
        assert not n.available and "notification service" in n.problem
        assert n.notify("x", actions={"a": "A"}, on_action=print) == 0
        assert time.monotonic() - t0 < 5
        n.close()
    assert not [t for t in threading.enumerate() if t.name == "schedcp-notify"]
