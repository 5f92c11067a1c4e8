"""``org.schedcp.Helper1`` on the system bus: marshalling, caller identity, authorization, error
mapping, signals and holds around ``HelperCore``; the core does the work.

A low-level message handler rather than dbus-next's ``@method`` (which can neither see the
sender nor be async): every call is checked against the method table (signature, sizes), the
caller is identified with GetConnectionCredentials, polkit is asked, then the core runs in a
thread pool (verify takes 15-60 s, deploy seconds) and the reply is sent when it is done. The
bus loop never blocks, and an exception never leaves the handler: it becomes a named error.

Argument types are plain D-Bus types; a{sv} for tunables and options (values checked here for
type and size, and against the policy's metadata in the core). Verify reports and history are
JSON strings: they are nested (stages with details, deployments with specs) and read by
programs that want them whole, where a D-Bus struct would be a brittle ten-field signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dbus_next import Message, MessageFlag, MessageType, Variant
from dbus_next.aio import MessageBus
from dbus_next.constants import BusType, NameFlag, RequestNameReply

from ..coexist import OURS, PROCESS, UNKNOWN
from ..core import CanaryParams, HelperCore
from ..scxstate import read_state
from . import BUS_NAME, INTERFACE, OBJECT_PATH, authz, checks, errors
from .errors import ServiceError
from .interface import METHODS, SIGNALS, VERSION, introspection_xml
from .limits import RATE_LIMITS, RateLimiter
from .marshal import schedulers_list, status_dict
from .others import LoaderBridge, Others

log = logging.getLogger("schedcp.helper.service")
audit_log = logging.getLogger("schedcp.helper.audit")
# one audit line per privileged call: who, what, which artifact, outcome (to the journal)
AUDIT: contextvars.ContextVar[dict] = contextvars.ContextVar("schedcp_audit")
UNAUDITED = frozenset({"Status", "ListSchedulers", "History"})  # read-status only
MAX_PENDING_VERIFY = 4
Handler = Callable[[Message, authz.Caller, tuple], Awaitable[list]]
# what a method says before it is authorized: (asks for the further action, dialog details)
Reach = Callable[[Message, authz.Caller, tuple], Awaitable[tuple[bool, dict[str, str] | None]]]


def revert_action(caller_uid: int, kept_by: int | None) -> str:
    """Revert is free for what the caller (or nobody) kept; another user's kept deployment
    needs an administrator."""
    method = METHODS["Revert"]
    if kept_by is None or caller_uid in (0, kept_by):
        return method.action
    return method.further


def _note(**kw) -> None:
    """Add facts to this call's audit line (no-op outside a dispatched call)."""
    note = AUDIT.get(None)
    if note is not None:
        note.update(kw)


def _audit_value(v) -> str:
    text = str(v)
    return text if re.fullmatch(r"[\w.:/@+-]{0,80}", text) else json.dumps(text[:80])



class HelperService:
    def __init__(self, bus: MessageBus, core: HelperCore, loop: asyncio.AbstractEventLoop):
        self.bus, self.core, self.loop = bus, core, loop
        self.authority = authz.Authority(bus)
        self.ops = ThreadPoolExecutor(4, thread_name_prefix="ops")
        self.verifies = ThreadPoolExecutor(1, thread_name_prefix="verify")
        self.pending_verify = 0
        self.rates = RateLimiter(RATE_LIMITS)
        self.others = Others(bus, core.state_file("takeover.json"))
        core.use_loader(LoaderBridge(self.others, loop))
        self.survey: dict = {}
        self.conflict = ""
        self._loader_seen = ""
        self.holds: set[str] = set()
        self.requested_reverts: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.handlers: dict[str, Handler] = {
            "Status": self.status, "ListSchedulers": self.list_schedulers,
            "VerifyPolicy": self.verify_policy, "VerifySource": self.verify_source,
            "Deploy": self.deploy, "Switch": self.switch, "UpdateHints": self.update_hints,
            "ExpectForks": self.expect_forks, "Keep": self.keep, "Revert": self.revert,
            "History": self.history,
        }
        self.reach: dict[str, Reach] = {"Deploy": self._deploy_reach,
                                        "Switch": self._note_name, "Keep": self._note_id,
                                        "Revert": self._revert_reach}

    # -- dispatch ----------------------------------------------------------------------------
    def on_message(self, msg: Message):
        """dbus-next calls this for every incoming message; it must never raise."""
        try:
            if msg.message_type == MessageType.SIGNAL:
                if (msg.member == "NameOwnerChanged" and msg.sender == "org.freedesktop.DBus"
                        and msg.signature == "sss"):
                    self._name_owner_changed(*msg.body)
                return False
            if msg.message_type != MessageType.METHOD_CALL:
                return False
            if msg.path == OBJECT_PATH or OBJECT_PATH.startswith(msg.path.rstrip("/") + "/"):
                task = self.loop.create_task(self._dispatch(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return True
            return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownObject",
                                     f"no object at {msg.path}")
        except Exception:
            log.exception("message handler failed")
            if msg.message_type == MessageType.METHOD_CALL:
                return Message.new_error(msg, errors.FAILED, "internal error in the helper")
            return False

    def _reply(self, msg: Message, reply: Message) -> None:
        if not msg.flags & MessageFlag.NO_REPLY_EXPECTED:
            self.bus.send(reply)

    async def _dispatch(self, msg: Message) -> None:
        note: dict = {}
        AUDIT.set(note)  # this task's own context: handlers add the artifact and name
        outcome = "ok"
        try:
            sig, body = await self._call(msg)
            reply = Message.new_method_return(msg, sig, body)
        except Exception as e:
            mapped = errors.from_exception(e)
            if mapped is None:
                log.exception("%s.%s failed", msg.interface, msg.member)
                mapped = ServiceError(errors.FAILED, "internal error in the helper (see its log)")
            reply = Message.new_error(msg, mapped.name, errors.scrub(mapped.message))
            outcome = mapped.name.rsplit(".", 1)[-1]
        if msg.member in METHODS and msg.member not in UNAUDITED and msg.path == OBJECT_PATH:
            caller = note.pop("caller", None)
            note.pop("method", None)
            extra = " ".join(f"{k}={_audit_value(v)}" for k, v in sorted(note.items()))
            audit_log.info("AUDIT uid=%s pid=%s sender=%s method=%s %soutcome=%s",
                           caller.uid if caller else "?", caller.pid if caller else "?",
                           msg.sender, msg.member, f"{extra} " if extra else "", outcome)
        try:
            self._reply(msg, reply)
        except Exception:
            log.exception("could not send the reply to %s", msg.sender)

    async def _call(self, msg: Message) -> tuple[str, list]:
        iface, member = msg.interface, msg.member
        if iface == "org.freedesktop.DBus.Introspectable" and member == "Introspect":
            return "s", [introspection_xml(msg.path)]
        if iface == "org.freedesktop.DBus.Peer":
            if member == "Ping":
                return "", []
            if member == "GetMachineId":
                mid = Path("/etc/machine-id")
                return "s", [mid.read_text().strip() if mid.is_file() else ""]
        if msg.path != OBJECT_PATH:
            raise ServiceError("org.freedesktop.DBus.Error.UnknownMethod",
                               f"no method {member} at {msg.path}")
        if iface == "org.freedesktop.DBus.Properties":
            return self._properties(msg)
        method = METHODS.get(member) if iface in (INTERFACE, None) else None
        if method is None:
            raise ServiceError("org.freedesktop.DBus.Error.UnknownMethod",
                               f"{iface}.{member} does not exist")
        if msg.signature != method.in_sig:
            raise errors.InvalidArgs(f"{member} takes ({method.in_sig}), got ({msg.signature})")
        try:
            caller = await self.authority.caller(msg.sender)
        except LookupError as e:
            raise errors.HelperError(str(e)) from None
        _note(caller=caller, method=member)
        args = checks.ARGS[member](msg.body)  # bad arguments: refused before anything else
        reach = self.reach.get(member)
        further, details = await reach(msg, caller, args) if reach else (False, None)
        # the declared action, asked before the method runs
        await self._authorize(caller, method.further if further else method.action, details)
        body = await self.handlers[member](msg, caller, args)
        return method.out_sig, body

    def _properties(self, msg: Message) -> tuple[str, list]:
        if msg.member == "Get" and msg.signature == "ss":
            if msg.body[0] == INTERFACE and msg.body[1] == "Version":
                return "v", [Variant("s", VERSION)]
            raise ServiceError("org.freedesktop.DBus.Error.UnknownProperty", "no such property")
        if msg.member == "GetAll" and msg.signature == "s":
            return "a{sv}", [{"Version": Variant("s", VERSION)} if msg.body[0] == INTERFACE
                             else {}]
        if msg.member == "Set" and msg.signature == "ssv":
            raise ServiceError("org.freedesktop.DBus.Error.PropertyReadOnly", "read-only")
        raise errors.InvalidArgs("Get(ss), GetAll(s) or Set(ssv)")

    async def _authorize(self, caller: authz.Caller, action: str,
                         details: dict[str, str] | None = None, rate: bool = True) -> None:
        _note(action=action)
        if not await self.authority.check(caller, action, details=details):
            raise errors.NotAuthorized(f"uid {caller.uid} is not authorized for {action} (polkit)")
        method = AUDIT.get({}).get("method")
        wait = self.rates.take(caller.uid, method) if method and rate else 0.0
        if wait:
            raise errors.Busy(f"rate limit: too many {method} calls from uid {caller.uid}; "
                              f"retry in {wait:.0f} s")

    async def _run(self, fn, *args, pool: ThreadPoolExecutor | None = None):
        return await self.loop.run_in_executor(pool or self.ops, fn, *args)

    def _need_sched_ext(self) -> None:
        if not read_state().supported:
            raise errors.NoSchedExt("this kernel has no sched_ext: nothing can be deployed "
                                    "here (Linux 6.12+ with CONFIG_SCHED_CLASS_EXT)")

    # -- methods (arguments checked and the caller authorized already) -----------------------
    async def status(self, msg, caller, args):
        await self.refresh_others()
        return [status_dict(self._with_others(await self._run(self.core.status)))]

    def _with_others(self, st: dict) -> dict:
        taken = self.others.taken
        return {**st, "others": {
            **self.survey, "conflict": self.conflict, "given_back": self.others.last_given_back,
            "taken_over": f"{taken.name} from {taken.owner}" if taken else ""}}

    def _ours_ops(self) -> str:
        cur = self.core.current()
        return cur.ops if cur is not None else ""

    def _ours(self) -> tuple[str, str]:
        """(ops of our deployment, the scx_* name scx_loader runs for it or "")."""
        return self._ours_ops(), self.core.held_via_loader()

    async def refresh_others(self) -> bool:
        """Survey who else is here; True (and OthersChanged, StateChanged) when it changed."""
        try:
            ops, via = self._ours()
            sv = await self.others.survey(ops, self.loop, via)
        except Exception:
            log.exception("surveying the other tuners failed")
            return False
        new = sv.to_dict()
        loader = sv.loader
        seen = loader.current if loader and loader.running else ""
        if sv.attached.owner == OURS and not sv.attached.via and seen and \
                seen != self._loader_seen:
            # scx_loader says it runs one while ours is attached: its start failed (the
            # kernel takes one at a time) and its state is stale. Noticed, not fought.
            self.conflict = (f"scx_loader tried to start {seen} while SchedCP holds the CPU "
                             "scheduler; SchedCP keeps it until you revert")
        elif sv.attached.owner != OURS:
            self.conflict = ""
        self._loader_seen = seen
        changed = {k: v for k, v in new.items() if k != "loader"} != {
            k: v for k, v in self.survey.items() if k != "loader"}
        self.survey = new
        if changed:
            self.emit("OthersChanged", [errors.scrub(sv.line)])
            self.emit_state()
        return changed

    async def watch_others(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.refresh_others()

    async def _make_room(self, caller, flags: set[str]) -> bool:
        """Another owner's scheduler attached: refuse unless the caller asked to take over;
        then take over (an unknown owner only with an administrator). True if we took it."""
        ops, via = self._ours()
        sv = await self.others.survey(ops, self.loop, via)
        self.survey = sv.to_dict()
        att = sv.attached
        if not att.foreign:
            return False
        if "take_over" not in flags:
            raise errors.OtherScheduler(
                f"{att.line} holds the CPU scheduler; SchedCP does not replace it silently. "
                "Leave it, or take over for this optimization (take_over) and it is given "
                "back afterwards")
        if att.owner in (PROCESS, UNKNOWN):
            await self._authorize(caller, authz.TAKE_OVER,
                                  {"process": att.process or "an unknown program",
                                   "name": att.name or att.ops}, rate=False)
        _note(took_over=att.owner)
        await self.others.take_over(att, sv.loader, self.loop)
        self.emit("OthersChanged", [errors.scrub(f"SchedCP took over from {att.line}")])
        return True

    async def give_back(self) -> None:
        if self.others.taken is None or self.core.current() is not None:
            return
        await self.others.give_back(self.loop)
        await self.refresh_others()
        self.emit_state()

    async def list_schedulers(self, msg, caller, args):
        return [schedulers_list(await self._run(self.core.schedulers))]

    async def verify_policy(self, msg, caller, args):
        name, tunables, options = args
        if not self.core.knows(name):
            raise errors.NotFound(f"no policy named {name!r}")
        report = await self._verify(msg, options, lambda progress: self.core.verify_policy(
            name, tunables, caller.uid, progress))
        _note(name=name, artifact=report.artifact, verdict=report.failed_stage or "verified")
        return [json.dumps(report.to_dict())]

    async def verify_source(self, msg, caller, args):
        source, name, tunables, options = args
        report = await self._verify(msg, options, lambda progress: self.core.verify_source(
            source, tunables, caller.uid, name, progress))
        _note(name=name, artifact=report.artifact, verdict=report.failed_stage or "verified")
        return [json.dumps(report.to_dict())]

    async def _verify(self, msg: Message, options: dict, run):
        """One verification at a time (each boots a VM); a few may queue, more are refused."""
        if self.pending_verify >= MAX_PENDING_VERIFY:
            raise errors.Busy("too many verifications queued; try again later")
        request_id = options.get("request_id") or f"{msg.sender}/{msg.serial}"
        sender = msg.sender

        def progress(stage: str, message: str) -> None:  # from the verify thread
            self.loop.call_soon_threadsafe(
                self.emit, "VerifyProgress", [request_id, str(stage), str(message)[:512]], sender)

        self.pending_verify += 1
        try:
            return await self._run(run, progress, pool=self.verifies)
        finally:
            self.pending_verify -= 1

    async def _deploy_reach(self, msg, caller, args):
        """New code (not verified from a shipped policy within its metadata) needs deploy-new;
        the admin's dialog says what will run: the scheduler's name and the artifact's hash."""
        name, artifact, shipped = await self._run(self.core.deploy_request, args[0], caller.uid)
        _note(name=name, artifact=artifact)
        return not shipped, {"name": name or "(unknown)", "artifact": artifact or "(none)"}

    async def deploy(self, msg, caller, args):
        text, kw, hints, flags = args
        self._need_sched_ext()
        return await self._start(msg, caller, flags, lambda: self.core.deploy(
            text, caller.uid, CanaryParams(**kw), msg.sender, hints, resume="resume" in flags))

    async def _note_name(self, msg, caller, args):
        _note(name=args[0])
        return False, None

    async def switch(self, msg, caller, args):
        name, tunables, kw, flags = args
        if not self.core.knows(name, "scx"):
            raise errors.NotFound(f"no packaged scheduler policy named {name!r}")
        self._need_sched_ext()
        return await self._start(msg, caller, flags, lambda: self.core.switch(
            name, tunables, caller.uid, CanaryParams(**kw), msg.sender,
            resume="resume" in flags))

    async def _start(self, msg, caller, flags: set[str], run) -> list:
        """Make room (taking over if asked), start, and hold the deploying client."""
        took = await self._make_room(caller, flags)
        try:
            dep = await self._run(run)
        except BaseException:
            if took:
                await self.give_back()
            raise
        await self._hold(msg.sender)
        return [dep.id]

    async def update_hints(self, msg, caller, args):
        """Only the connection that deployed (and holds) a deployment feeds its hints."""
        dep_id, hints = args
        return [await self._run(self.core.update_hints, dep_id, hints, msg.sender)]

    async def expect_forks(self, msg, caller, args):
        dep_id, parent, runtimes = args
        return [await self._run(self.core.expect_forks, dep_id, parent, runtimes, msg.sender)]

    async def _note_id(self, msg, caller, args):
        _note(deployment=args[0])
        return False, None

    async def keep(self, msg, caller, args):
        dep = await self._run(self.core.keep, args[0], caller.uid)
        return [dep.state]

    async def _revert_reach(self, msg, caller, args):
        dep_id = args[0]
        owner = await self._run(self.core.kept_owner, dep_id or None)
        _note(deployment=dep_id or "current", kept_by=owner if owner is not None else "-")
        return revert_action(caller.uid, owner) == METHODS["Revert"].further, None

    async def revert(self, msg, caller, args):
        dep_id, reason = args
        reason = f"{reason or 'requested'} (uid {caller.uid})"
        if dep_id:
            self.requested_reverts.add(dep_id)
        else:
            cur = self.core.current()
            if cur is not None:
                self.requested_reverts.add(cur.id)
        dep = await self._run(self.core.revert, reason, dep_id or None)
        if dep is None:
            self.emit_state()
            await self.give_back()
        return [dep.state if dep else "default"]

    async def history(self, msg, caller, args):
        deps = await self._run(self.core.history)
        return [json.dumps([d.to_dict() for d in deps[-args[0]:]])]

    # -- holds ---------------------------------------------------------------------------------
    def _match(self, name: str) -> str:
        return (f"type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                f"interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='{name}'")

    async def _bus_call(self, member: str, sig: str, body: list) -> Message:
        return await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member=member, signature=sig, body=body))

    async def _hold(self, owner: str) -> None:
        """Watch the deploying client; if it left already (a race), revert at once."""
        if owner in self.holds:
            return
        self.holds.add(owner)
        await self._bus_call("AddMatch", "s", [self._match(owner)])
        reply = await self._bus_call("NameHasOwner", "s", [owner])
        if reply.message_type == MessageType.METHOD_RETURN and not reply.body[0]:
            self._name_owner_changed(owner, owner, "")

    def _name_owner_changed(self, name: str, old: str, new: str) -> None:
        if new or name not in self.holds:
            return
        self.holds.discard(name)
        self.authority.forget(name)
        self.loop.create_task(self._bus_call("RemoveMatch", "s", [self._match(name)]))
        self.loop.run_in_executor(self.ops, self._vanished, name)

    def _vanished(self, name: str) -> None:
        try:
            self.core.owner_vanished(name)
        except Exception:
            log.exception("reverting after %s left failed", name)

    # -- signals -------------------------------------------------------------------------------
    def emit(self, member: str, body: list, destination: str | None = None) -> None:
        sig = SIGNALS[member][0]
        m = Message.new_signal(OBJECT_PATH, INTERFACE, member, sig, body)
        if destination:
            m.destination = destination
        try:
            self.bus.send(m)
        except Exception:
            log.exception("could not emit %s", member)

    def emit_state(self) -> None:
        def run():
            try:
                st = status_dict(self.core.status())
            except Exception:
                log.exception("status for StateChanged failed")
                return
            self.loop.call_soon_threadsafe(self.emit, "StateChanged", [st])

        self.loop.run_in_executor(self.ops, run)

    def listener(self, kind: str, dep) -> None:
        """The core's callback, from whatever thread changed the state (a canary watcher too)."""
        automatic = kind == "reverted" and dep.id not in self.requested_reverts
        self.requested_reverts.discard(dep.id)

        automatic = automatic or kind == "replaced"

        def on_loop():
            self.emit("DeploymentChanged", [dep.id, dep.state])
            if automatic:
                self.emit("Reverted", [dep.id, errors.scrub(dep.reason)])
            self.emit_state()
            if kind == "replaced" and self.others.taken is not None:
                # the tool we took it from (or another) attached its own: nothing to give back
                self.others.forget(f"not given back: {dep.reason}")
            elif kind in ("reverted", "failed"):
                task = self.loop.create_task(self.give_back())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self.loop.call_soon_threadsafe(on_loop)

    def shutdown(self) -> None:
        self.verifies.shutdown(wait=False, cancel_futures=True)
        self.ops.shutdown(wait=True)


class _Listener:
    """Breaks the construction cycle: the core needs a listener before the service exists."""

    def __init__(self):
        self.target: Callable[[str, object], None] | None = None

    def __call__(self, kind: str, dep) -> None:
        if self.target is not None:
            self.target(kind, dep)


async def serve(state_dir: Path | None = None, address: str | None = None,
                ready: Callable[[], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Own the name, recover the kept scheduler, serve until ``stop`` or the bus goes away."""
    loop = asyncio.get_running_loop()
    bus = await (MessageBus(bus_address=address) if address
                 else MessageBus(bus_type=BusType.SYSTEM)).connect()
    relay = _Listener()
    kw = {"listener": relay}
    if state_dir is not None:
        kw["state_dir"] = state_dir
    core = await loop.run_in_executor(None, lambda: HelperCore(**kw))
    service = HelperService(bus, core, loop)
    relay.target = service.listener
    bus.add_message_handler(service.on_message)
    kept = await loop.run_in_executor(None, core.recover)
    log.info("recovered: %s", f"{kept.kind} {kept.name}" if kept else "kernel default")
    reply = await bus.request_name(BUS_NAME, NameFlag.DO_NOT_QUEUE)
    if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
        bus.disconnect()
        core.shutdown()
        raise RuntimeError(f"cannot own {BUS_NAME}: {reply.name} (another helper runs?)")
    log.info("serving %s", BUS_NAME)
    await service.give_back()  # taken before a restart, and nothing of ours came back
    await service.refresh_others()
    watcher = loop.create_task(service.watch_others(
        float(os.environ.get("SCHEDCP_OTHERS_POLL_S", "2"))))
    if ready:
        ready()
    stop = stop or asyncio.Event()
    done = loop.create_task(bus.wait_for_disconnect())
    waiter = loop.create_task(stop.wait())
    await asyncio.wait({done, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    watcher.cancel()
    service.shutdown()
    await loop.run_in_executor(None, core.shutdown)
    if service.others.taken is not None and not done.done():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(service.others.give_back(loop), 10)
    if not done.done():
        bus.disconnect()
