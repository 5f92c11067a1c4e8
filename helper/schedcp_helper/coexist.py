"""Who else is here: the attached sched_ext scheduler and its owner, and the desktop's other tuners.

Only one sched_ext scheduler can be attached at a time, and other tools start them too:
scx_loader (D-Bus ``org.scx.Loader``, modes Auto/Gaming/PowerSave/LowLatency/Server), the older
``scx.service``, or any process. This module names the owner from what the kernel and /proc say
(the process holding the struct_ops link, its ancestors and its cgroup) plus, when the service
layer asked scx_loader over D-Bus, its ``CurrentScheduler``, ``SchedulerMode`` and
``CurrentSchedulerArgs``.
It knows nothing of D-Bus itself: the facts from the bus are handed in (``LoaderView``,
``bus_names``). Every path is injectable (``Roots``) so tests can point it elsewhere.

Everything read from /proc belongs to other processes: names are bounded and cleaned before use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Set
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .scxstate import SYSFS, ScxState, read_state

# scx_loader's SchedMode (tools/scx_loader/src/lib.rs): the u32 of SchedulerMode
LOADER_MODES = {0: "Auto", 1: "Gaming", 2: "PowerSave", 3: "LowLatency", 4: "Server"}
LOADER_BUS = "org.scx.Loader"
POWER_PROFILES_BUS = ("net.hadess.PowerProfiles", "org.freedesktop.UPower.PowerProfiles")

OURS, SCX_LOADER, SCX_SERVICE, PROCESS, UNKNOWN, NONE = (
    "schedcp", "scx_loader", "scx.service", "process", "unknown", "")
_NAME = re.compile(r"[^A-Za-z0-9_.:@+-]")


def clean(text: str, limit: int = 48) -> str:
    """Another process's name, made safe to show: printable, bounded."""
    return _NAME.sub("?", text.strip())[:limit]


@dataclass(frozen=True)
class Roots:
    sysfs: Path = SYSFS
    proc: Path = Path("/proc")
    fs: Path = Path("/")  # where unit files and binaries are looked for



@dataclass(frozen=True)
class Tuner:
    """One of the desktop's other tuners, how to recognise it and whether it touches sched_ext."""

    name: str
    comms: tuple[str, ...] = ()  # /proc/PID/comm (15 characters at most)
    units: tuple[str, ...] = ()  # systemd unit files (present) and cgroups (active)
    binaries: tuple[str, ...] = ()
    bus: tuple[str, ...] = ()  # well-known names it may own on the system bus
    sched_ext: bool = False  # starts sched_ext schedulers itself


TUNERS = (
    Tuner("scx_loader", ("scx_loader",), ("scx_loader.service",), ("scx_loader",), (LOADER_BUS,),
          sched_ext=True),
    Tuner("scx.service", (), ("scx.service",), (), (), sched_ext=True),
    Tuner("gamemode", ("gamemoded",), ("gamemoded.service",), ("gamemoded",)),
    Tuner("falcond", ("falcond",), ("falcond.service",), ("falcond",)),
    # both speak the same interface under both names (ppd owns the UPower one since 0.20):
    # the owner's process tells them apart; an owner we cannot see counts as the first listed
    Tuner("power-profiles-daemon", ("power-profiles-",), ("power-profiles-daemon.service",),
          ("power-profiles-daemon",), POWER_PROFILES_BUS),
    Tuner("tuned-ppd", ("tuned-ppd",), ("tuned-ppd.service",), ("tuned-ppd",),
          POWER_PROFILES_BUS),
    Tuner("ananicy-cpp", ("ananicy-cpp",), ("ananicy-cpp.service",), ("ananicy-cpp",)),
    Tuner("system76-scheduler", ("system76-schedu",), ("com.system76.Scheduler.service",),
          ("system76-scheduler",)),
)
UNIT_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system",
             "usr/lib/systemd/user", "usr/share/dbus-1/system-services")
BIN_DIRS = ("usr/bin", "usr/sbin", "usr/libexec", "usr/lib/power-profiles-daemon", "bin", "sbin")


@dataclass(frozen=True)
class LoaderView:
    """scx_loader's own account, from its D-Bus properties."""

    current: str = "unknown"  # CurrentScheduler: "scx_lavd", or "unknown" when none
    mode: int = 0  # SchedulerMode
    args: tuple[str, ...] = ()  # CurrentSchedulerArgs: [] when started with a mode
    supported: tuple[str, ...] = ()  # SupportedSchedulers: what it can start

    @property
    def running(self) -> bool:
        return self.current not in ("", "unknown")

    @property
    def mode_name(self) -> str:
        return LOADER_MODES.get(self.mode, f"mode {self.mode}")


@dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    ppid: int
    cgroup: str


@dataclass(frozen=True)
class Attached:
    """What sched_ext runs now and whose it is."""

    state: str = ""  # sysfs state; "" without sched_ext
    ops: str = ""
    owner: str = NONE  # schedcp | scx_loader | scx.service | process | unknown | "" (none)
    name: str = ""  # what to call it: "scx_lavd", "lavd"
    mode: str = ""  # scx_loader's mode name, when it is scx_loader's
    pid: int = 0  # the process holding the struct_ops link, 0 when not found
    process: str = ""  # that process's name
    via: str = ""  # ours, held through another tool: "scx_loader"

    @property
    def foreign(self) -> bool:
        """Attached by someone else: deploying means taking over."""
        return self.state in ("enabled", "enabling") and self.owner not in (OURS, NONE)

    @property
    def line(self) -> str:
        """One line a person reads: 'scx_lavd via scx_loader (Gaming)'."""
        if not self.state:
            return "no sched_ext in this kernel"
        if self.state not in ("enabled", "enabling"):
            return "kernel default scheduler"
        who = {OURS: "SchedCP", PROCESS: f"{self.process} (pid {self.pid})",
               UNKNOWN: "an unknown owner"}.get(self.owner, self.owner)
        mode = f" ({self.mode})" if self.mode else ""
        if self.via:  # ours, run by scx_loader: it is the one source of truth
            return f"{self.name or self.ops} via {self.via} for SchedCP{mode}"
        return f"{self.name or self.ops} via {who}{mode}"


@dataclass(frozen=True)
class Survey:
    attached: Attached
    present: tuple[str, ...] = ()
    active: tuple[str, ...] = ()
    loader: LoaderView | None = None

    @property
    def line(self) -> str:
        others = [t for t in self.active if t not in (self.attached.owner, self.attached.via)]
        return self.attached.line + (f"; also active: {', '.join(others)}" if others else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["line"] = self.line
        d["attached"]["line"] = self.attached.line
        return d


def _read(path: Path, limit: int = 4096) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode(errors="replace")
    except OSError:
        return ""


def process(proc: Path, pid: int) -> Process | None:
    stat = _read(proc / str(pid) / "stat")
    if not stat:
        return None
    # "PID (COMM) S PPID ...": comm may hold spaces and parentheses; the last ')' ends it
    head, _, rest = stat.rpartition(")")
    try:
        ppid = int(rest.split()[1])
    except (IndexError, ValueError):
        return None
    comm = head.partition("(")[2]
    return Process(pid, clean(comm, 16), ppid, _read(proc / str(pid) / "cgroup", 2048))


def processes(proc: Path) -> list[Process]:
    out = []
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return out
    for e in entries:
        if e.name.isdigit() and (p := process(proc, int(e.name))) is not None:
            out.append(p)
    return out


def struct_ops_holders(proc: Path) -> list[int]:
    """Processes holding a struct_ops BPF link: a sched_ext scheduler's loader (6.12 fdinfo
    says ``link_type:\\tstruct_ops``). One readlink per descriptor; fdinfo only for links."""
    pids = []
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return pids
    for e in entries:
        if not e.name.isdigit():
            continue
        fd_dir = proc / e.name / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target == "anon_inode:bpf_link" and "link_type:\tstruct_ops" in _read(
                    proc / e.name / "fdinfo" / fd):
                pids.append(int(e.name))
                break
    return pids


def _in_unit(p: Process, unit: str) -> bool:
    return any(line.rstrip().endswith("/" + unit) or f"/{unit}/" in line
               for line in p.cgroup.splitlines())


def _ancestry(proc: Path, pid: int, depth: int = 4) -> list[Process]:
    chain: list[Process] = []
    while pid > 1 and len(chain) < depth:
        p = process(proc, pid)
        if p is None:
            break
        chain.append(p)
        pid = p.ppid
    return chain


def _matches(ops: str, scx_name: str) -> bool:
    """sysfs names the ops ("lavd"); tools name the binary ("scx_lavd")."""
    short = scx_name.removeprefix("scx_")
    return bool(ops) and (ops in (scx_name, short) or ops.startswith(short + "_"))


def identify(st: ScxState, ours_ops: str = "", loader: LoaderView | None = None,
             proc: Path = Path("/proc"), own_pid: int | None = None,
             ours_via_loader: str = "") -> Attached:
    """Name the attached scheduler's owner. ``ours_ops``: what our running deployment attached
    (sysfs name); ``loader``: scx_loader's properties, when it is on the bus;
    ``ours_via_loader``: the scx_* name our deployment asked scx_loader to run."""
    att = _identify(st, ours_ops, loader, proc, own_pid)
    if (ours_via_loader and att.owner in (SCX_LOADER, OURS) and loader is not None
            and loader.current == ours_via_loader and _matches(st.ops, ours_via_loader)):
        return Attached(att.state, att.ops, OURS, ours_via_loader, "", att.pid, att.process,
                        via=SCX_LOADER)
    return att


def _identify(st: ScxState, ours_ops: str, loader: LoaderView | None, proc: Path,
              own_pid: int | None) -> Attached:
    if not st.supported:
        return Attached()
    base = Attached(state=st.state, ops=st.ops)
    if st.state not in ("enabled", "enabling"):
        return base
    own_pid = os.getpid() if own_pid is None else own_pid
    holders = struct_ops_holders(proc)
    for pid in holders:
        chain = _ancestry(proc, pid)
        if not chain:
            continue
        if any(p.pid == own_pid for p in chain):
            return Attached(st.state, st.ops, OURS, ours_ops or st.ops, pid=pid,
                            process=chain[0].comm)
        holder = chain[0]
        name = holder.comm if holder.comm.startswith("scx_") else st.ops
        if any(p.comm == "scx_loader" or _in_unit(p, "scx_loader.service") for p in chain):
            mode = loader.mode_name if loader and loader.running and not loader.args else ""
            return Attached(st.state, st.ops, SCX_LOADER,
                            loader.current if loader and loader.running else name, mode,
                            pid, holder.comm)
        if any(_in_unit(p, "scx.service") for p in chain):
            return Attached(st.state, st.ops, SCX_SERVICE, name, pid=pid, process=holder.comm)
        return Attached(st.state, st.ops, PROCESS, st.ops, pid=pid, process=holder.comm)
    # nobody found holding a link (an older scheduler, or /proc hidden from us): a scx_*
    # process of scx.service whose name fits the ops is the service's
    for p in processes(proc):
        if _in_unit(p, "scx.service") and p.comm.startswith("scx_") and _matches(st.ops, p.comm):
            return Attached(st.state, st.ops, SCX_SERVICE, p.comm, pid=p.pid, process=p.comm)
    if ours_ops and st.ops == ours_ops:
        return Attached(st.state, st.ops, OURS, st.ops)
    if loader and loader.running and _matches(st.ops, loader.current):
        mode = loader.mode_name if not loader.args else ""
        return Attached(st.state, st.ops, SCX_LOADER, loader.current, mode)
    return Attached(st.state, st.ops, UNKNOWN, st.ops)


BusOwners = Mapping[str, str] | Set[str]  # well-known name -> its owner's comm ("": unseen)


def _owns(t: Tuner, bus: BusOwners) -> bool:
    """Whether one of ``t``'s names is owned by ``t``: by the owner's process name when it is
    known, else by being the first tuner that may own that name."""
    for name in t.bus:
        if name not in bus:
            continue
        comm = bus.get(name, "") if isinstance(bus, Mapping) else ""
        if comm in t.comms or (not comm and next(x for x in TUNERS if name in x.bus) is t):
            return True
    return False


def tuners(roots: Roots, procs: list[Process], bus: BusOwners = frozenset()
           ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(present, active) among ``TUNERS``: installed (unit file or binary) and running
    (a process of that name or in that unit's cgroup, or its name owned on the system bus)."""
    present, active = [], []
    for t in TUNERS:
        running = (any(p.comm in t.comms for p in procs)
                   or any(_in_unit(p, u) for p in procs for u in t.units)
                   or _owns(t, bus))
        installed = running or any((roots.fs / d / u).exists() for d in UNIT_DIRS
                                   for u in t.units) or any(
            (roots.fs / d / b).exists() for d in BIN_DIRS for b in t.binaries)
        if installed:
            present.append(t.name)
        if running:
            active.append(t.name)
    return tuple(present), tuple(active)


@dataclass
class Coexistence:
    """The survey, with injectable roots; cheap enough to run every few seconds."""

    roots: Roots = field(default_factory=Roots)
    # the owner is looked up again only when sched_ext, scx_loader's account or our own
    # deployment changed, or its process is gone (a scan of every fd costs ~0.1 ms/process)
    _cache: tuple[tuple, Attached] | None = field(default=None, repr=False)

    def state(self) -> ScxState:
        return read_state(self.roots.sysfs)

    def attached(self, ours_ops: str = "", loader: LoaderView | None = None,
                 ours_via_loader: str = "") -> Attached:
        st = self.state()
        key = (st.supported, st.state, st.ops, st.enable_seq, ours_ops, loader, ours_via_loader)
        if self._cache is not None and self._cache[0] == key and (
                not self._cache[1].pid or (self.roots.proc / str(self._cache[1].pid)).exists()):
            return self._cache[1]
        att = identify(st, ours_ops, loader, self.roots.proc, ours_via_loader=ours_via_loader)
        self._cache = (key, att)
        return att

    def survey(self, ours_ops: str = "", loader: LoaderView | None = None,
               bus_names: BusOwners = frozenset(),
               ours_via_loader: str = "") -> Survey:
        procs = processes(self.roots.proc)
        attached = self.attached(ours_ops, loader, ours_via_loader)
        present, active = tuners(self.roots, procs, bus_names)
        return Survey(attached, present, active, loader)
