"""Desktop notifications with actions (``org.freedesktop.Notifications`` on the session bus).

One dbus-next connection in a daemon thread with its own asyncio loop, as the helper client
does; action callbacks run on that thread. Without a session bus or a notification daemon the
notifier says so (``available`` is False) and every call is a quiet no-op: the tray must work
without notifications.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("schedcp.desktop.notify")
NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
APP_NAME = "SchedCP"
CALL_TIMEOUT = 5.0


class Notifier:
    def __init__(self, address: str | None = None):
        self.address = address or os.environ.get("DBUS_SESSION_BUS_ADDRESS") or ""
        self.available = False
        self.problem = ""  # why not, when not available
        self.server: tuple[str, ...] = ()  # GetServerInformation: name, vendor, version, spec
        self.capabilities: list[str] = []
        self._callbacks: dict[int, Callable[[str], None]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bus = None
        self._connect()

    # -- plumbing ----------------------------------------------------------------------------
    def _connect(self) -> None:
        if not self.address:
            self.problem = "no session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="schedcp-notify",
                                        daemon=True)
        self._thread.start()
        try:
            self._submit(self._connect_async())
            self.available = True
            self.problem = ""
        except Exception as e:
            self.problem = f"no notification service on the session bus: {e}"
            self._shutdown()

    async def _connect_async(self) -> None:
        from dbus_next import Message, MessageType
        from dbus_next.aio import MessageBus

        bus = await MessageBus(bus_address=self.address).connect()
        try:
            bus.add_message_handler(self._on_message)
            await self._call(bus, Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                body=[f"type='signal',interface='{NAME}',path='{PATH}'"]))
            info = await bus.call(Message(destination=NAME, path=PATH, interface=NAME,
                                          member="GetServerInformation"))
            if info.message_type == MessageType.ERROR:
                raise RuntimeError(info.body[0] if info.body else info.error_name)
            self.server = tuple(info.body)
            caps = await self._call(bus, Message(destination=NAME, path=PATH, interface=NAME,
                                                 member="GetCapabilities"))
            self.capabilities = list(caps.body[0])
        except BaseException:
            bus.disconnect()
            raise
        self._bus = bus

    @staticmethod
    async def _call(bus, msg):
        from dbus_next import MessageType

        reply = await bus.call(msg)
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(reply.body[0] if reply.body else reply.error_name)
        return reply

    def _submit(self, coro):
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT)

    def _on_message(self, msg) -> bool:
        from dbus_next import MessageType

        if msg.message_type != MessageType.SIGNAL or msg.interface != NAME:
            return False
        if msg.member == "ActionInvoked":
            nid, key = msg.body
            with self._lock:
                cb = self._callbacks.get(nid)
            if cb is not None:
                try:
                    cb(key)
                except Exception:
                    log.exception("notification action %s failed", key)
        elif msg.member == "NotificationClosed":
            with self._lock:
                self._callbacks.pop(msg.body[0], None)
        return False

    def _shutdown(self) -> None:
        if self._bus is not None and self._loop is not None:
            bus, self._bus = self._bus, None
            self._loop.call_soon_threadsafe(bus.disconnect)
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(5)
        self._loop = self._thread = None

    # -- the API ------------------------------------------------------------------------------
    @property
    def actions_supported(self) -> bool:
        return "actions" in self.capabilities

    def notify(self, summary: str, body: str = "", actions: dict[str, str] | None = None,
               on_action: Callable[[str], None] | None = None, icon: str = "",
               timeout_ms: int = -1, replaces: int = 0, critical: bool = False) -> int:
        """Show a notification; ``actions`` maps keys to button labels and ``on_action(key)``
        runs (on the notifier's thread) when the user picks one. Returns the id (0: not shown).
        """
        if not self.available:
            self._retry()
            if not self.available:
                return 0
        from dbus_next import Message, Variant

        flat: list[str] = []
        for key, label in (actions or {}).items():
            flat += [key, label]
        hints = {"urgency": Variant("y", 2 if critical else 1),
                 "desktop-entry": Variant("s", "schedcp-tray")}
        msg = Message(destination=NAME, path=PATH, interface=NAME, member="Notify",
                      signature="susssasa{sv}i",
                      body=[APP_NAME, replaces, icon, summary, body, flat, hints, timeout_ms])
        try:
            # the loop thread registers the callback as it reads the reply, so before any
            # ActionInvoked for it can be dispatched
            reply = self._submit(self._notify(msg, on_action))
        except Exception as e:
            log.warning("notification %r not shown: %s", summary, e)
            self.available = False
            self.problem = f"the notification service stopped answering: {e}"
            self._shutdown()
            return 0
        return reply

    async def _notify(self, msg, on_action) -> int:
        reply = await self._call(self._bus, msg)
        nid = int(reply.body[0])
        if on_action is not None:
            with self._lock:
                self._callbacks[nid] = on_action
        return nid

    def close_notification(self, nid: int) -> None:
        if not self.available or not nid:
            return
        from dbus_next import Message

        try:
            self._submit(self._call(self._bus, Message(
                destination=NAME, path=PATH, interface=NAME, member="CloseNotification",
                signature="u", body=[nid])))
        except Exception as e:
            log.debug("closing notification %d: %s", nid, e)

    def _retry(self) -> None:
        """A daemon may have started since (a session's daemon is often D-Bus activated)."""
        if self.address and self._loop is None:
            self._connect()

    def close(self) -> None:
        self._shutdown()
        self.available = False
        with self._lock:
            self._callbacks.clear()
