"""The other tools on the system bus: scx_loader's account, and taking the CPU scheduler over
from its owner and giving it back.

``coexist`` (the core) names the owner from sysfs and /proc; this module adds what only the bus
knows (scx_loader's ``org.scx.Loader`` properties, which tuners own their names), and acts:

- scx_loader: ``StopScheduler``; given back with ``SwitchSchedulerWithArgs(name, args)`` when it
  ran with arguments, else ``SwitchScheduler(name, mode)`` (its source: tools/scx_loader);
- scx.service: systemd's ``StopUnit``/``StartUnit`` (org.freedesktop.systemd1);
- anyone else: SIGTERM to the process holding the struct_ops link, only with an administrator's
  consent (the service asks polkit first); nothing to give back to.

The take-over is written to ``takeover.json`` before anything is stopped, so a helper restart
still gives it back. Names and arguments from scx_loader are another program's words: bounded
and type-checked before they are stored or sent back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dbus_next import Message, MessageFlag, MessageType

from ..atomic import write_atomic
from ..coexist import (
    LOADER_BUS,
    PROCESS,
    SCX_LOADER,
    SCX_SERVICE,
    TUNERS,
    UNKNOWN,
    Attached,
    Coexistence,
    LoaderView,
    Survey,
    clean,
)
from ..errors import HelperError, OtherScheduler

log = logging.getLogger("schedcp.helper.others")
LOADER_PATH = "/org/scx/Loader"
SYSTEMD = ("org.freedesktop.systemd1", "/org/freedesktop/systemd1",
           "org.freedesktop.systemd1.Manager")
MAX_ARGS, MAX_ARG = 64, 256
STOP_WAIT_S = 10.0
KNOWN_BUS_NAMES = frozenset(b for t in TUNERS for b in t.bus)


class TakeOverError(OtherScheduler):
    """Taking over failed; nothing of ours was started."""


@dataclass
class TakeOver:
    """What we took and how to give it back."""

    owner: str  # scx_loader | scx.service | process | unknown
    name: str  # what ran: "scx_lavd"
    mode: int = 0
    args: list[str] = field(default_factory=list)
    pid: int = 0
    since: float = 0.0

    @classmethod
    def load(cls, path: Path) -> TakeOver | None:
        try:
            d = json.loads(path.read_text())
            return cls(owner=str(d["owner"]), name=clean(str(d["name"])),
                       mode=int(d.get("mode", 0)),
                       args=[str(a)[:MAX_ARG] for a in d.get("args", [])][:MAX_ARGS],
                       pid=int(d.get("pid", 0)), since=float(d.get("since", 0.0)))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self)))


class Others:
    def __init__(self, bus, path: Path, coexist: Coexistence | None = None):
        """``path``: where a take-over is recorded, to give back after a restart."""
        self.bus = bus
        self.coexist = coexist or Coexistence()
        self.path = path
        self.taken: TakeOver | None = TakeOver.load(self.path)
        self.last_given_back = ""  # what the last give-back did, for status

    async def _call(self, dest: str, path: str, iface: str, member: str, sig: str = "",
                    body: list | None = None, timeout: float = 10.0,
                    start: bool = False) -> Message:
        """``start``: the bus may start the service (giving back); asking never does."""
        msg = Message(destination=dest, path=path, interface=iface, member=member,
                      signature=sig, body=body or [],
                      flags=MessageFlag(0) if start else MessageFlag.NO_AUTOSTART)
        return await asyncio.wait_for(self.bus.call(msg), timeout)

    async def bus_names(self) -> dict[str, str]:
        """The other tuners' names owned on the bus, each with its owner's process name ("" when
        the bus or /proc does not say): two daemons may own the same name."""
        reply = await self._call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "ListNames")
        if reply.message_type != MessageType.METHOD_RETURN:
            return {}
        return {n: await self._owner_comm(n) for n in reply.body[0] if n in KNOWN_BUS_NAMES}

    async def _owner_comm(self, name: str) -> str:
        try:
            reply = await self._call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s",
                                     [name], timeout=3.0)
            if reply.message_type != MessageType.METHOD_RETURN:
                return ""
            return clean(Path(f"/proc/{int(reply.body[0])}/comm").read_text()[:64].strip())
        except Exception:  # gone, or a pid we cannot read: unseen
            return ""

    async def loader_view(self, names: set[str] | None = None) -> LoaderView | None:
        """scx_loader's properties, None when it is not on the bus or does not answer."""
        if names is not None and LOADER_BUS not in names:
            return None
        try:
            reply = await self._call(LOADER_BUS, LOADER_PATH, "org.freedesktop.DBus.Properties",
                                     "GetAll", "s", [LOADER_BUS], timeout=3.0)
        except Exception:  # gone, slow or refusing: no account from it
            return None
        if reply.message_type != MessageType.METHOD_RETURN:
            return None
        props = reply.body[0]

        def get(key: str, sig: str, default):
            var = props.get(key)
            return var.value if var is not None and var.signature == sig else default

        args = get("CurrentSchedulerArgs", "as", [])
        supported = get("SupportedSchedulers", "as", [])
        return LoaderView(clean(str(get("CurrentScheduler", "s", "unknown"))),
                          int(get("SchedulerMode", "u", 0)),
                          tuple(str(a)[:MAX_ARG] for a in args[:MAX_ARGS]),
                          tuple(clean(str(n)) for n in supported[:MAX_ARGS]))

    async def survey(self, ours_ops: str, loop, ours_via_loader: str = "") -> Survey:
        names = await self.bus_names()
        loader = await self.loader_view(names)
        return await loop.run_in_executor(None, lambda: self.coexist.survey(
            ours_ops, loader, names, ours_via_loader))

    # -- a packaged scheduler of ours, run by scx_loader ------------------------------------
    async def loader_switch(self, name: str, args: list[str]) -> None:
        """Ask scx_loader to run ``name`` with exactly these (validated) arguments."""
        await self._loader_call("SwitchSchedulerWithArgs", "sas", [name, list(args)])

    async def loader_stop(self) -> None:
        await self._loader_call("StopScheduler")

    async def _loader_call(self, member: str, sig: str = "", body: list | None = None) -> None:
        reply = await self._call(LOADER_BUS, LOADER_PATH, LOADER_BUS, member, sig, body,
                                 timeout=15.0)
        if reply.message_type != MessageType.METHOD_RETURN:
            raise OtherScheduler(f"scx_loader refused {member}: {reply.error_name}: "
                                 f"{str(reply.body[0])[:200] if reply.body else ''}")

    # -- take over -----------------------------------------------------------------------------
    async def take_over(self, att: Attached, loader: LoaderView | None, loop) -> TakeOver:
        """Stop ``att``'s owner and wait until sched_ext is free. Recorded first."""
        if att.owner == SCX_LOADER:
            if loader is None or not loader.running:
                raise TakeOverError("scx_loader holds the scheduler but does not answer on the "
                                    "bus; stop it yourself")
            rec = TakeOver(SCX_LOADER, loader.current, loader.mode, list(loader.args),
                           att.pid, time.time())
        elif att.owner == SCX_SERVICE:
            rec = TakeOver(SCX_SERVICE, att.name, pid=att.pid, since=time.time())
        elif att.owner in (PROCESS, UNKNOWN):
            if att.pid <= 1 or att.pid == os.getpid():
                raise TakeOverError(f"cannot find the process holding {att.name}; stop it "
                                    "yourself")
            rec = TakeOver(att.owner, att.process or att.name, pid=att.pid, since=time.time())
        else:
            raise TakeOverError(f"nothing to take over from {att.owner!r}")
        rec.save(self.path)
        self.taken = rec
        try:
            await self._stop(rec)
            await self._wait_free(loop)
        except Exception as e:
            await self.give_back(loop)
            raise TakeOverError(f"could not take the scheduler from {rec.owner}: {e}") from e
        log.info("took the CPU scheduler over from %s (%s)", rec.owner, rec.name)
        return rec

    async def _stop(self, rec: TakeOver) -> None:
        if rec.owner == SCX_LOADER:
            reply = await self._call(LOADER_BUS, LOADER_PATH, LOADER_BUS, "StopScheduler")
        elif rec.owner == SCX_SERVICE:
            reply = await self._call(*SYSTEMD, "StopUnit", "ss", ["scx.service", "replace"])
        else:
            os.kill(rec.pid, signal.SIGTERM)
            return
        if reply.message_type != MessageType.METHOD_RETURN:
            raise TakeOverError(f"{reply.error_name}: {reply.body[0] if reply.body else ''}")

    async def _wait_free(self, loop) -> None:
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            st = await loop.run_in_executor(None, self.coexist.state)
            if st.state not in ("enabled", "enabling", "disabling"):
                return
            await asyncio.sleep(0.05)
        raise TakeOverError(f"sched_ext still busy after {STOP_WAIT_S:g} s")

    def forget(self, why: str) -> None:
        self.taken = None
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.last_given_back = why

    async def give_back(self, loop) -> str:
        """Restart what we took, as it ran. Returns what was done ('' when nothing was taken)."""
        rec, self.taken = self.taken, None
        if rec is None:
            return ""
        try:
            if rec.owner == SCX_LOADER:
                if rec.args:
                    reply = await self._call(LOADER_BUS, LOADER_PATH, LOADER_BUS,
                                             "SwitchSchedulerWithArgs", "sas",
                                             [rec.name, rec.args], start=True)
                else:
                    reply = await self._call(LOADER_BUS, LOADER_PATH, LOADER_BUS,
                                             "SwitchScheduler", "su", [rec.name, rec.mode],
                                             start=True)
            elif rec.owner == SCX_SERVICE:
                reply = await self._call(*SYSTEMD, "StartUnit", "ss", ["scx.service", "replace"],
                                         start=True)
            else:
                reply = None
        except Exception as e:
            done = f"could not give {rec.name} back to {rec.owner}: {e}"
            log.warning("%s", done)
        else:
            if reply is None:
                done = f"{rec.name} ({rec.owner}, pid {rec.pid}) was stopped; SchedCP cannot " \
                       "restart it"
            elif reply.message_type == MessageType.METHOD_RETURN:
                done = f"gave {rec.name} back to {rec.owner}"
            else:
                done = (f"{rec.owner} refused to take {rec.name} back: {reply.error_name}")
        self.forget(done)
        log.info("%s", done)
        return done


class LoaderBridge:
    """The core's ``LoaderPort``: its worker threads (deploy, revert, the canary's trip) call
    scx_loader through this service's bus, on the bus loop. Never called from the loop itself
    (it would wait on itself): that raises at once."""

    def __init__(self, others: Others, loop: asyncio.AbstractEventLoop, timeout: float = 20.0):
        self.others, self.loop, self.timeout = others, loop, timeout

    def _run(self, coro):
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            coro.close()
            raise HelperError("scx_loader called synchronously from the bus loop (a bug)")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    def view(self) -> LoaderView | None:
        return self._run(self.others.loader_view())

    def switch(self, name: str, args: list[str]) -> None:
        self._run(self.others.loader_switch(name, args))

    def stop(self) -> None:
        self._run(self.others.loader_stop())
