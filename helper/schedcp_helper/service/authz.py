"""Authorization: polkit's CheckAuthorization for the caller's bus name, uid 0 as the floor.

Every method names one action; polkit decides with the ``system-bus-name`` subject (so it looks
the process up itself and no pid race is possible). When polkit cannot be reached or errs, only
uid 0 is allowed: failing closed for everybody else.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from dbus_next import Message, MessageType, Variant

log = logging.getLogger("schedcp.helper.authz")

POLKIT_NAME = "org.freedesktop.PolicyKit1"
POLKIT_PATH = "/org/freedesktop/PolicyKit1/Authority"
POLKIT_IFACE = "org.freedesktop.PolicyKit1.Authority"
ALLOW_USER_INTERACTION = 0x1

READ_STATUS = "org.schedcp.helper.read-status"
VERIFY = "org.schedcp.helper.verify"
SWITCH = "org.schedcp.helper.switch"
DEPLOY_NEW = "org.schedcp.helper.deploy-new"
REVERT = "org.schedcp.helper.revert"
REVERT_OTHER = "org.schedcp.helper.revert-other"  # another user's kept deployment
TAKE_OVER = "org.schedcp.helper.take-over"  # stop a scheduler of an unknown owner (a process)
ACTIONS = (READ_STATUS, VERIFY, SWITCH, DEPLOY_NEW, REVERT, REVERT_OTHER, TAKE_OVER)


@dataclass(frozen=True)
class Caller:
    sender: str  # unique bus name, e.g. ":1.42"
    uid: int
    pid: int


class Authority:
    """Caller identity (cached per unique name: the bus never reuses one) and polkit checks."""

    def __init__(self, bus, cache_size: int = 512):
        self.bus = bus
        self._callers: OrderedDict[str, Caller] = OrderedDict()
        self._cache_size = cache_size

    async def caller(self, sender: str) -> Caller:
        hit = self._callers.get(sender)
        if hit is not None:
            return hit
        reply = await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="GetConnectionCredentials",
            signature="s", body=[sender]))
        if reply.message_type != MessageType.METHOD_RETURN:
            raise LookupError(f"cannot identify {sender}: {reply.error_name}")
        creds = reply.body[0]
        who = Caller(sender, int(creds["UnixUserID"].value),
                     int(creds["ProcessID"].value) if "ProcessID" in creds else 0)
        self._callers[sender] = who
        while len(self._callers) > self._cache_size:
            self._callers.popitem(last=False)
        return who

    def forget(self, sender: str) -> None:
        self._callers.pop(sender, None)

    async def check(self, caller: Caller, action: str, interactive: bool = True,
                    details: dict[str, str] | None = None) -> bool:
        """Whether polkit grants ``action`` to ``caller`` (uid 0 only if polkit is unreachable).
        ``details`` reach the authentication dialog ($(key) in the action's message)."""
        subject = ["system-bus-name", {"name": Variant("s", caller.sender)}]
        try:
            reply = await self.bus.call(Message(
                destination=POLKIT_NAME, path=POLKIT_PATH, interface=POLKIT_IFACE,
                member="CheckAuthorization", signature="(sa{sv})sa{ss}us",
                body=[subject, action, {k: str(v)[:128] for k, v in (details or {}).items()},
                      ALLOW_USER_INTERACTION if interactive else 0, ""]))
        except Exception as e:  # the connection itself failed
            log.warning("polkit unreachable (%s): only uid 0 is allowed", e)
            return caller.uid == 0
        if reply.message_type != MessageType.METHOD_RETURN:
            log.warning("polkit refused to answer for %s (%s: %s): only uid 0 is allowed",
                        action, reply.error_name, reply.body[0] if reply.body else "")
            return caller.uid == 0
        return bool(reply.body[0][0])
