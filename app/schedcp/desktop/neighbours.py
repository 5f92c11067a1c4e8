"""Working with the desktop's other tuners: the power profile and GameMode (issue 17).

- **Power profile** (power-profiles-daemon's ``net.hadess.PowerProfiles`` or tuned-ppd's
  ``org.freedesktop.UPower.PowerProfiles`` on the system bus, property ``ActiveProfile``:
  power-saver / balanced / performance): ``power-saver`` makes the goal *battery* unless the
  user chose a goal; a change is reported so the tray can re-evaluate.
- **GameMode** (Feral's ``com.feralinteractive.GameMode`` on the session bus, signals
  ``GameRegistered(i pid, o path)`` / ``GameUnregistered(i pid, o path)``): a game that asks
  for GameMode triggers its per-app profile at once (the same path as the proc connector's
  exec event), and its unregistering ends it.

Each watcher has one dbus-next connection in a daemon thread with its own loop, as the
notifier does; callbacks run on that thread. Without the service or the bus the watcher says
so (``problem``) and stays quiet. The pids and names come from other programs: checked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("schedcp.desktop.neighbours")
PPD = (("net.hadess.PowerProfiles", "/net/hadess/PowerProfiles"),
       ("org.freedesktop.UPower.PowerProfiles", "/org/freedesktop/UPower/PowerProfiles"))
PROFILES = ("power-saver", "balanced", "performance")
GAMEMODE = ("com.feralinteractive.GameMode", "/com/feralinteractive/GameMode")
CALL_TIMEOUT = 5.0


def effective_goal(default_goal: str, goal_chosen: bool, power_profile: str) -> str:
    """The goal to optimize for: the user's choice wins; otherwise power-saver means battery."""
    if not goal_chosen and power_profile == "power-saver":
        return "battery"
    return default_goal


class _BusWatch:
    """One connection on its own thread; subclasses fill ``_start`` (on the loop)."""

    def __init__(self, address: str):
        self.address = address
        self.problem = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"schedcp-{type(self).__name__.lower()}")
        self._bus = None

    def start(self) -> _BusWatch:
        if not self.address:
            self.problem = "no bus address"
            return self
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._connect(), self._loop).result(CALL_TIMEOUT)
        except Exception as e:
            self.problem = f"{type(self).__name__}: {e}"
            log.info("%s", self.problem)
        return self

    async def _connect(self) -> None:
        from dbus_next.aio import MessageBus

        self._bus = await MessageBus(bus_address=self.address).connect()
        self._bus.add_message_handler(self._on_message)
        await self._start()

    async def _start(self) -> None:
        raise NotImplementedError

    def _on_message(self, msg) -> None:
        raise NotImplementedError

    async def _add_match(self, rule: str) -> None:
        from dbus_next import Message

        await self._bus.call(Message(destination="org.freedesktop.DBus",
                                     path="/org/freedesktop/DBus",
                                     interface="org.freedesktop.DBus", member="AddMatch",
                                     signature="s", body=[rule]))

    def close(self) -> None:
        if self._bus is not None:
            bus, self._bus = self._bus, None
            self._loop.call_soon_threadsafe(bus.disconnect)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


class PowerProfileWatch(_BusWatch):
    """``profile``: the active power profile ("" when no daemon answers); ``on_change(p)``."""

    def __init__(self, on_change: Callable[[str], None] | None = None,
                 address: str | None = None):
        super().__init__(address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
                         or "unix:path=/run/dbus/system_bus_socket")
        self.on_change = on_change or (lambda p: None)
        self.profile = ""
        self.service = ""

    async def _start(self) -> None:
        from dbus_next import Message, MessageFlag, MessageType

        for name, path in PPD:
            await self._add_match(f"type='signal',sender='{name}',path='{path}',"
                                  "interface='org.freedesktop.DBus.Properties',"
                                  "member='PropertiesChanged'")
        for name, path in PPD:
            reply = await self._bus.call(Message(
                destination=name, path=path, interface="org.freedesktop.DBus.Properties",
                member="Get", signature="ss", body=[name, "ActiveProfile"],
                flags=MessageFlag.NO_AUTOSTART))  # ask, never start a daemon by asking
            if reply.message_type == MessageType.METHOD_RETURN:
                self.service = name
                self._set(reply.body[0].value)
                return
        self.problem = "no power profile daemon on the system bus"

    def _set(self, value: object) -> None:
        profile = value if isinstance(value, str) and value in PROFILES else ""
        if profile != self.profile:
            self.profile = profile
            try:
                self.on_change(profile)
            except Exception:
                log.exception("power profile listener failed")

    def _on_message(self, msg) -> None:
        if (msg.member == "PropertiesChanged" and msg.signature == "sa{sv}as"
                and msg.body[0] in (PPD[0][0], PPD[1][0]) and msg.path in (PPD[0][1], PPD[1][1])):
            changed = msg.body[1]
            if "ActiveProfile" in changed:
                self._set(changed["ActiveProfile"].value)


class GameModeWatch(_BusWatch):
    """``on_game("started"|"stopped", pid)`` for GameMode's GameRegistered/GameUnregistered."""

    def __init__(self, on_game: Callable[[str, int], None], address: str | None = None):
        super().__init__(address or os.environ.get("DBUS_SESSION_BUS_ADDRESS") or "")
        self.on_game = on_game

    async def _start(self) -> None:
        await self._add_match(f"type='signal',interface='{GAMEMODE[0]}',path='{GAMEMODE[1]}'")

    def _on_message(self, msg) -> None:
        if (msg.interface != GAMEMODE[0] or msg.path != GAMEMODE[1] or msg.signature != "io"
                or msg.member not in ("GameRegistered", "GameUnregistered")):
            return
        pid = msg.body[0]
        if not isinstance(pid, int) or not 0 < pid < 2**22:
            return
        try:
            self.on_game("started" if msg.member == "GameRegistered" else "stopped", pid)
        except Exception:
            log.exception("GameMode listener failed")
