"""The Wayland backends' D-Bus plumbing against stand-ins for the desktops' services on a
private session bus (no KWin or GNOME Shell here): a KWin that loads our script and calls back
the way the script's ``callDBus`` does, and a GNOME Shell whose Introspect.GetWindows answers.
What runs inside KWin itself (the JavaScript) is checked only for the hooks it must use."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus

from schedcp.desktop.apps import identify
from schedcp.desktop.foreground import ForegroundWatcher


class _Loop:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class FakeKWin:
    """Owns org.kde.KWin with /Scripting (loadScript, unloadScript) and the loaded script's
    run(); ``activate(pid)`` does what the script's callDBus does on a window activation."""

    def __init__(self, address: str):
        self.script, self.plugin, self.running, self.unloaded = "", "", False, []
        self.loop = _Loop()
        self.bus = self.loop.run(self._start(address))

    async def _start(self, address):
        bus = await MessageBus(bus_address=address).connect()
        bus.add_message_handler(self._handle)
        await bus.request_name("org.kde.KWin")
        return bus

    def _handle(self, msg):
        if msg.message_type != MessageType.METHOD_CALL:
            return False
        if (msg.path, msg.member) == ("/Scripting", "loadScript"):
            self.script = Path(msg.body[0]).read_text()
            self.plugin = msg.body[1]
            return Message.new_method_return(msg, "i", [7])
        if (msg.path, msg.member) == ("/Scripting", "unloadScript"):
            self.unloaded.append(msg.body[0])
            return Message.new_method_return(msg, "b", [True])
        if (msg.path, msg.member) == ("/Scripting/Script7", "run"):
            self.running = True
            return Message.new_method_return(msg)
        return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", msg.member)

    def activate(self, pid: float) -> None:
        dest = re.search(r'callDBus\("([^"]+)"', self.script).group(1)

        async def call():
            await self.bus.call(Message(destination=dest, path="/org/schedcp/Foreground",
                                        interface="org.schedcp.Foreground", member="Activated",
                                        signature="d", body=[float(pid)]))
        self.loop.run(call())

    def close(self):
        self.bus.disconnect()
        self.loop.close()


def _check_js(script: str) -> None:
    """At least valid JavaScript (KWin's engine is QJSEngine; node parses the same syntax)."""
    import shutil
    import tempfile

    node = shutil.which("node")
    if node is None:
        print("node is not installed: the KWin script's syntax is not checked")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".js") as f:
        f.write(script)
        f.flush()
        r = subprocess.run([node, "--check", f.name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_kwin_backend(bus, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "KDE")
    monkeypatch.delenv("DISPLAY", raising=False)
    kwin = FakeKWin(bus)
    seen: list[int | None] = []
    got = threading.Event()

    def on_change(ident, pid):
        seen.append(pid)
        got.set()

    w = ForegroundWatcher(on_change)
    assert w.backend == "kde"
    w.start()
    try:
        assert w.backend == "kde", w.problem
        assert kwin.running and kwin.plugin == "schedcp-foreground"
        # the script hooks activation in Plasma 6 and 5 and sends the pid
        for hook in ("windowActivated", "clientActivated", "w.pid", "Activated"):
            assert hook in kwin.script
        _check_js(kwin.script)
        other = subprocess.Popen(["sleep", "30"])
        try:
            kwin.activate(os.getpid())  # our own window (the tray's menu): not reported
            kwin.activate(other.pid)
            assert got.wait(5)
            assert seen == [other.pid] and w.current()[1] == other.pid
            assert w.current()[0] == identify(other.pid)
        finally:
            other.kill()
            other.wait()
    finally:
        w.stop()
        kwin.close()
    assert "schedcp-foreground" in kwin.unloaded  # stop() unloads the script


def _introspect(pid: int):
    """A GNOME Shell answering GetWindows: two windows, the second focused."""
    def handle(msg):
        if msg.message_type != MessageType.METHOD_CALL or msg.member != "GetWindows":
            return False
        windows = {1: {"has-focus": Variant("b", False), "pid": Variant("u", 1)},
                   2: {"has-focus": Variant("b", True), "pid": Variant("u", pid),
                       "title": Variant("s", "x")}}
        return Message.new_method_return(msg, "a{ta{sv}}", [windows])
    return handle


def test_gnome_backend_and_fallback(bus, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "ubuntu:GNOME")
    monkeypatch.delenv("DISPLAY", raising=False)
    w = ForegroundWatcher()
    assert w.backend == "gnome"
    w.start()
    loop = _Loop()

    async def start():
        b = await MessageBus(bus_address=bus).connect()
        b.add_message_handler(_introspect(os.getpid()))
        await b.request_name("org.gnome.Shell")
        return b

    before = w.current()  # no GNOME Shell yet: the activity fallback answers (or None)
    assert before is None or before[1] != 1
    b = loop.run(start())
    try:
        t0 = time.monotonic()
        cur = w.current()
        assert cur is not None and cur[1] == os.getpid()
        print(f"\nGNOME GetWindows → current(): {(time.monotonic() - t0) * 1000:.0f} ms")
    finally:
        b.disconnect()
        loop.close()
        w.stop()


@pytest.mark.parametrize("desktop", ["KDE"])
def test_kwin_missing_falls_back(bus, monkeypatch, desktop):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", desktop)
    monkeypatch.delenv("DISPLAY", raising=False)
    w = ForegroundWatcher()
    w.start()  # nobody owns org.kde.KWin on this bus
    try:
        assert w.backend == "activity" and "kde" in w.problem
    finally:
        w.stop()
