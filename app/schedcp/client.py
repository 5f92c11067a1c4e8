"""Client of the root helper (``org.schedcp.Helper1`` on the system bus), for the CLI and the tray.

A synchronous API over dbus-next: one asyncio loop runs in a daemon thread and owns the
connection; each call waits for its reply. Signal callbacks run on that thread (a Qt caller
re-posts them to its own thread). The connection is the caller's identity on the bus: while it
is open the helper holds the deployments it made; closing it (or exiting) before ``keep``
reverts them.

The connection follows the helper instance it talks to (the unique bus name that owns
``org.schedcp.Helper1``, from NameOwnerChanged): when that instance leaves the bus (killed,
crashed, restarted) every call still waiting on it fails at once with ``HelperGone``, and
``on_gone`` callbacks run (``schedcp deploy`` holding a canary stops waiting). Helper signals
are taken only from that unique name.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# one name, the rest derived from it as the contract does (packaging/dbus/org.schedcp.Helper1.xml)
INTERFACE = "org.schedcp.Helper1"
BUS_NAME = INTERFACE
OBJECT_PATH = "/" + INTERFACE.replace(".", "/")
ERROR_PREFIX = INTERFACE + ".Error."
CALL_TIMEOUT = 30.0
VERIFY_TIMEOUT = 900.0


class HelperError(Exception):
    """An error from the helper (or from reaching it); ``name`` is the D-Bus error name."""

    hint = ""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
        self.message = message

    @property
    def short(self) -> str:
        return self.name.removeprefix(ERROR_PREFIX).rsplit(".", 1)[-1]

    def __str__(self) -> str:  # the hint once, and not when the message already says it
        if not self.hint or self.hint in self.message:
            return self.message
        return f"{self.message} ({self.hint})"


class HelperUnavailable(HelperError):
    hint = ("is schedcp-helper installed? Install it with: sudo apt install schedcp-helper; "
            f"its D-Bus service {BUS_NAME} starts on demand")


class HelperGone(HelperUnavailable):
    """The helper instance this connection talked to left the bus while a call or a held
    deployment was pending: it was killed, crashed or restarted."""

    hint = ("the helper exited; its running scheduler went with it and the kernel is back on "
            "its default, unless a restarted helper restored a kept one. The next call starts "
            "it again")


class NotAuthorized(HelperError):
    hint = "polkit refused; ask an administrator or run from an active local session"


class NoSchedExt(HelperError):
    def __str__(self) -> str:  # the helper's wording is for developers: say it once, plainly
        from .missing import no_sched_ext_short

        return no_sched_ext_short()


class InvalidArgs(HelperError):
    pass


class TokenInvalid(HelperError):
    hint = "verify again to get a fresh token"


class NotFound(HelperError):
    pass


class VerificationFailed(HelperError):
    pass


class Busy(HelperError):
    pass


class OtherScheduler(HelperError):
    """Another tool's scheduler is attached; deploy again with ``take_over`` to replace it
    for this optimization (it is given back afterwards)."""


class Suspended(HelperError):
    """The kernel ejected this scheduler before; ``resume`` runs it again."""


_BY_NAME: dict[str, type[HelperError]] = {
    ERROR_PREFIX + c.__name__: c
    for c in (NotAuthorized, NoSchedExt, InvalidArgs, TokenInvalid, NotFound, VerificationFailed,
              Busy, OtherScheduler, Suspended)
}
DBUS = "org.freedesktop.DBus"
NO_REPLY = "org.freedesktop.DBus.Error.NoReply"
# the daemon's answer when the service it activated did not own its name in time
ACTIVATION_TIMED_OUT = "org.freedesktop.DBus.Error.TimedOut"
ACTIVATION_ATTEMPTS = 3  # a call that meets that answer is sent again, this many times in all
_UNAVAILABLE = ("org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
                "org.freedesktop.DBus.Error.Spawn.ChildExited",
                "org.freedesktop.DBus.Error.NoReply",
                "org.freedesktop.DBus.Error.Disconnected")


def gone(owner: str, what: str = "the call") -> HelperGone:
    return HelperGone(NO_REPLY, f"the SchedCP helper ({owner or 'unknown'}) left the bus while "
                      f"{what} was pending")


def error_for(name: str, message: str) -> HelperError:
    if name in _UNAVAILABLE:
        return HelperUnavailable(name, f"the SchedCP helper is not reachable: {message}")
    if name == "org.freedesktop.DBus.Error.AccessDenied":
        return NotAuthorized(name, message)
    return _BY_NAME.get(name, HelperError)(name, message)


def plain(value: Any) -> Any:
    """Variants and nested containers → plain Python values."""
    from dbus_next import Variant

    if isinstance(value, Variant):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def variants(values: dict | None) -> dict:
    """Plain tunables/options → a{sv}: bool → b, int → x (or t), float → d, str → s,
    list of ints → au, dict of int → int → a{ut}."""
    from dbus_next import Variant

    out = {}
    for k, v in (values or {}).items():
        if isinstance(v, Variant):
            out[k] = v
        elif isinstance(v, bool):
            out[k] = Variant("b", v)
        elif isinstance(v, int):
            out[k] = Variant("x" if v < 2**63 else "t", v)
        elif isinstance(v, float):
            out[k] = Variant("d", v)
        elif isinstance(v, str):
            out[k] = Variant("s", v)
        elif isinstance(v, (list, tuple)):
            out[k] = Variant("au", [int(x) for x in v])
        elif isinstance(v, dict):
            out[k] = Variant("a{ut}", {int(a): int(b) for a, b in v.items()})
        else:
            raise TypeError(f"{k}: cannot send a {type(v).__name__}")
    return out


@dataclass
class Signal:
    member: str
    args: list


class HelperClient:
    """One connection to the helper. Use as a context manager, or call ``close``."""

    def __init__(self, address: str | None = None, timeout: float = CALL_TIMEOUT):
        self.address = address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="schedcp-dbus",
                                        daemon=True)
        self._thread.start()
        self._bus = None
        self._subscribers: list[Callable[[Signal], None]] = []
        self._serial_hooks: list[Callable[[int], None]] = []
        self._gone_watchers: list[Callable[[HelperGone], None]] = []
        self._owner = ""  # the helper instance's unique name, "" while none owns the name
        self._gone: asyncio.Future | None = None  # resolved when that instance leaves
        try:
            self._bus = self._submit(self._connect(), timeout)
        except BaseException:
            self._stop_loop()
            raise

    # -- plumbing --------------------------------------------------------------------------
    async def _connect(self):
        from dbus_next import BusType, Message, MessageType
        from dbus_next.aio import MessageBus

        try:
            bus = await (MessageBus(bus_address=self.address) if self.address
                         else MessageBus(bus_type=BusType.SYSTEM)).connect()
        except (OSError, ValueError) as e:
            raise HelperUnavailable("org.freedesktop.DBus.Error.NoServer",
                                    f"cannot connect to the system bus: {e}") from None
        self._gone = self._loop.create_future()
        bus.add_message_handler(self._on_message)

        async def daemon(member: str, signature: str, body: list):
            return await bus.call(Message(
                destination=DBUS, path="/org/freedesktop/DBus", interface=DBUS, member=member,
                signature=signature, body=body))

        await daemon("AddMatch", "s", [f"type='signal',sender='{BUS_NAME}',path='{OBJECT_PATH}',"
                                       f"interface='{INTERFACE}'"])
        # subscribed before asking who owns the name: no change falls between the two
        await daemon("AddMatch", "s", [f"type='signal',sender='{DBUS}',interface='{DBUS}',"
                                       f"member='NameOwnerChanged',arg0='{BUS_NAME}'"])
        reply = await daemon("GetNameOwner", "s", [BUS_NAME])
        if reply.message_type == MessageType.METHOD_RETURN and not self._owner:
            self._owner = reply.body[0]
        return bus

    def _on_message(self, msg) -> bool:
        from dbus_next import MessageType

        if msg.message_type != MessageType.SIGNAL:
            return False
        if (msg.sender == DBUS and msg.member == "NameOwnerChanged" and msg.interface == DBUS
                and msg.signature == "sss" and msg.body[0] == BUS_NAME):
            old, new = msg.body[1], msg.body[2]
            if old and old == self._owner:
                self._lost(old)
            self._owner = new
        # only from the instance we talk to: a unicast signal from any other peer is ignored
        elif (msg.interface == INTERFACE and msg.path == OBJECT_PATH and self._owner
                and msg.sender == self._owner):
            sig = Signal(msg.member, plain(list(msg.body)))
            for cb in list(self._subscribers):
                try:
                    cb(sig)
                except Exception:  # a subscriber's bug must not kill the connection
                    import logging

                    logging.getLogger("schedcp.client").exception("signal callback failed")
        return False

    def _lost(self, owner: str) -> None:
        """The helper instance ``owner`` left the bus: fail what waits on it, tell watchers."""
        err = gone(owner, "a call or a deployment of this connection")
        old, self._gone = self._gone, self._loop.create_future()
        if old is not None and not old.done():
            old.set_result(owner)
        for cb in list(self._gone_watchers):
            try:
                cb(err)
            except Exception:
                import logging

                logging.getLogger("schedcp.client").exception("on_gone callback failed")

    def _submit(self, coro, timeout: float | None):
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise HelperError("org.freedesktop.DBus.Error.Timeout",
                              f"the helper did not answer within {timeout:g} s") from None

    async def _call_async(self, member: str, signature: str, body: list,
                          interface: str = INTERFACE):
        # The bus gives up on a helper it started that did not own its name in time
        # (service_start_timeout, 25 s on Debian; a loaded machine took longer). The call was
        # never delivered, so sending it again is safe: under systemd it joins the unit's
        # start, which goes on; started directly, the bus starts the helper afresh.
        for _ in range(ACTIVATION_ATTEMPTS - 1):
            try:
                return await self._call_once(member, signature, body, interface)
            except HelperUnavailable as e:
                if e.name != ACTIVATION_TIMED_OUT:
                    raise
        return await self._call_once(member, signature, body, interface)

    async def _call_once(self, member: str, signature: str, body: list, interface: str):
        from dbus_next import Message, MessageType

        msg = Message(destination=BUS_NAME, path=OBJECT_PATH, interface=interface, member=member,
                      signature=signature, body=body)
        for hook in self._serial_hooks:
            hook(msg.serial)
        # the instance that answers this call, or (none running yet) the one bus activation
        # starts for it: if it leaves before replying, the call fails now, not at its timeout
        instance = self._gone
        call = asyncio.ensure_future(self._bus.call(msg))
        await asyncio.wait({call, instance}, return_when=asyncio.FIRST_COMPLETED)
        if not call.done():
            call.cancel()
            raise gone(instance.result(), f"{member}")
        try:
            reply = call.result()
        except EOFError:
            raise HelperUnavailable("org.freedesktop.DBus.Error.Disconnected",
                                    "the bus connection closed") from None
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            if reply.error_name == NO_REPLY and reply.sender == DBUS and "disconnected" in text:
                # the daemon's answer for a recipient that left without replying
                raise gone(self._owner or "", f"{member}")
            if reply.error_name == ACTIVATION_TIMED_OUT and reply.sender == DBUS:
                raise HelperUnavailable(ACTIVATION_TIMED_OUT, text)
            raise error_for(reply.error_name, text)
        return reply.body

    def call(self, member: str, signature: str = "", body: list | None = None,
             timeout: float | None = None, interface: str = INTERFACE) -> list:
        """A raw method call (tests and fuzzers use it); returns the reply body."""
        if self._bus is None:
            raise HelperUnavailable("org.freedesktop.DBus.Error.Disconnected", "closed")
        return self._submit(self._call_async(member, signature, body or [], interface),
                            timeout or self.timeout)

    @property
    def unique_name(self) -> str:
        return self._bus.unique_name if self._bus else ""

    def subscribe(self, callback: Callable[[Signal], None]) -> Callable[[], None]:
        """Call ``callback(Signal)`` for every helper signal; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def on_gone(self, callback: Callable[[HelperGone], None]) -> Callable[[], None]:
        """Call ``callback(HelperGone)`` (on the bus thread) whenever the helper instance this
        connection talks to leaves the bus; returns an unsubscribe function."""
        self._gone_watchers.append(callback)
        return lambda: self._gone_watchers.remove(callback)

    def close(self) -> None:
        if self._bus is not None:
            bus, self._bus = self._bus, None
            self._loop.call_soon_threadsafe(bus.disconnect)
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> HelperClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the API ---------------------------------------------------------------------------
    def status(self) -> dict:
        return plain(self.call("Status")[0])

    def list_schedulers(self) -> list[dict]:
        out = plain(self.call("ListSchedulers")[0])
        for s in out:
            s["tunables"] = json.loads(s.get("tunables") or "{}")
        return out

    def _verify(self, member: str, sig: str, body: list, on_progress, timeout) -> dict:
        import secrets

        request_id = secrets.token_hex(8)
        unsub = None
        if on_progress is not None:
            def relay(s: Signal) -> None:
                if s.member == "VerifyProgress" and s.args[0] == request_id:
                    on_progress(s.args[1], s.args[2])
            unsub = self.subscribe(relay)
        try:
            body = [*body, {"request_id": variants({"x": request_id})["x"]}]
            return json.loads(self.call(member, sig, body, timeout or VERIFY_TIMEOUT)[0])
        finally:
            if unsub:
                unsub()

    def verify_policy(self, name: str, tunables: dict | None = None,
                      on_progress: Callable[[str, str], None] | None = None,
                      timeout: float | None = None) -> dict:
        """Verify one of our policies; the report dict has ``ok`` and ``token``."""
        return self._verify("VerifyPolicy", "sa{sv}a{sv}", [name, variants(tunables)],
                            on_progress, timeout)

    def verify_source(self, source: bytes, name: str = "custom", tunables: dict | None = None,
                      on_progress: Callable[[str, str], None] | None = None,
                      timeout: float | None = None) -> dict:
        return self._verify("VerifySource", "aysa{sv}a{sv}", [source, name, variants(tunables)],
                            on_progress, timeout)

    def deploy(self, token: str, canary: dict | None = None) -> str:
        """Deploy a verified artifact; held by this connection until ``keep``."""
        return self.call("Deploy", "sa{sv}", [token, variants(canary)], 120)[0]

    def switch(self, name: str, tunables: dict | None = None,
               canary: dict | None = None) -> str:
        return self.call("Switch", "sa{sv}a{sv}", [name, variants(tunables),
                                                   variants(canary)], 120)[0]

    def update_hints(self, dep_id: str, hints: dict[int, int]) -> int:
        """Expected runtimes (tgid → ns; 0 forgets) for jobs of our running deployment."""
        return self.call("UpdateHints", "sa{ut}", [dep_id, {int(k): int(v)
                                                            for k, v in hints.items()}])[0]

    def expect_forks(self, dep_id: str, parent: int, runtimes: list[int]) -> int:
        """Expected runtimes (ns) of ``parent``'s next children by birth order; [] stops."""
        return self.call("ExpectForks", "suat", [dep_id, int(parent),
                                                 [int(ns) for ns in runtimes]])[0]

    def keep(self, dep_id: str) -> str:
        return self.call("Keep", "s", [dep_id], 60)[0]

    def revert(self, dep_id: str = "", reason: str = "") -> str:
        return self.call("Revert", "ss", [dep_id, reason], 60)[0]

    def history(self, limit: int = 50) -> list[dict]:
        return json.loads(self.call("History", "u", [limit])[0])

    def version(self) -> str:
        return plain(self.call("Get", "ss", [INTERFACE, "Version"],
                               interface="org.freedesktop.DBus.Properties")[0])
