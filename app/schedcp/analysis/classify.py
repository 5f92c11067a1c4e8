"""Workload classification: a pure function over process snapshots, so it is testable with
synthetic trees and runs unchanged on the live system.

Every process's CPU use (in CPUs, over the sampling window) is attributed to one kind from
its own name and its ancestors' (Steam/Proton/Wine trees, make/ninja + compilers, players,
desktop apps) or, failing names, from numbers (several CPU-bound processes of one executable,
a lone CPU hog). The kind holding most attributed CPU wins; confidence is how clearly it wins.
Names inform *classification* only: the planner sees the kind and numbers, never the names.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

BUSY = 50.0  # % of one CPU: a "CPU-bound" process over the window
ACTIVE = 2.0  # % of one CPU: doing something at all
RUNNABLE = 0.6  # mean runnable threads: wanted a CPU most of the window (CPU-bound, starved)

_GAME_NAMES = {
    "wine", "wine64", "wineserver", "wine-preloader", "wine64-preloader", "steam", "reaper",
    "gamescope", "pressure-vessel-wrap", "pv-bwrap", "srt-bwrap", "lutris", "heroic",
    "gamemoded", "proton",
}
_GAME_TOKENS = ("steamapps/common", "/proton", "steamlaunch", "steam_app", "pressure-vessel")
_NOT_GAME = {"steamwebhelper"}  # Steam's own UI: a browser, not the game
_COMPILERS = {
    "cc1", "cc1plus", "cc1obj", "cc1objplus", "f951", "gcc", "g++", "cc", "c++", "clang",
    "clang++", "rustc", "ld", "ld.bfd", "ld.gold", "ld.lld", "lld", "mold", "as", "javac",
    "compile", "link", "asm", "ghc", "nvcc", "swiftc", "zig", "tcc", "collect2", "lto1",
    "lto-wrapper", "cc1rs",
}
_BUILD_DRIVERS = {
    "make", "gmake", "ninja", "samu", "cargo", "cmake", "bazel", "meson", "scons", "gradle",
    "mvn", "msbuild", "dpkg-buildpackage", "rpmbuild", "bitbake", "kbuild", "go",
}
_MEDIA = {
    "mpv", "vlc", "mplayer", "ffplay", "ffmpeg", "totem", "celluloid", "kodi", "kodi.bin",
    "obs", "gst-launch-1.0", "haruna", "smplayer", "rhythmbox", "audacious", "spotify",
    "clementine", "strawberry", "parole", "gnome-music", "mpd", "showtime", "dragon",
}
_AUDIO_SERVERS = {"pipewire", "pipewire-pulse", "pulseaudio", "wireplumber", "jackd"}
_INTERACTIVE = {
    "firefox", "firefox-esr", "firefox-bin", "web content", "isolated web co", "chrome",
    "chromium", "google-chrome", "brave", "brave-browser", "msedge", "code", "codium", "electron",
    "gnome-shell", "kwin_x11", "kwin_wayland", "plasmashell", "xorg", "xwayland", "mutter",
    "gedit", "gnome-text-editor", "kate", "vim", "nvim", "emacs", "libreoffice", "soffice.bin",
    "thunderbird", "slack", "discord", "gnome-terminal-", "gnome-terminal-server", "konsole",
    "alacritty", "kitty", "foot", "xterm", "nautilus", "dolphin", "steamwebhelper", "gimp",
    "inkscape", "blender", "krita", "evince", "okular",
}
_SHELLS = {"sh", "bash", "dash", "zsh", "fish", "env", "timeout", "nice", "taskset", "sudo",
           "python", "python3", "perl", "xargs", "parallel", "systemd-run", "setsid", "time"}
_CHAIN = {"sh", "bash", "dash", "zsh", "env", "timeout", "nice", "xargs", "time", "setsid",
          "ccache", "sccache", "distcc", "libtool", "jobserver"}
_VERSION = re.compile(r"^(.*?)(-\d+(\.\d+)*)$")  # clang-19, gcc-12, python3.11 stays


class Proc(Protocol):
    """The fields classification reads (ProcessInfo has them)."""

    pid: int
    comm: str
    exe: str
    cmdline: list[str]
    ppid: int
    cpu_percent: float
    threads: int


def base_name(p: Proc) -> str:
    """The name a process is known by: exe basename, else comm; version suffix stripped."""
    name = (p.exe.rsplit("/", 1)[-1] if p.exe else "") or p.comm
    name = name.removesuffix(" (deleted)").lower()
    m = _VERSION.match(name)
    return m.group(1) if m else name


def _names(p: Proc) -> set[str]:
    names = {base_name(p), p.comm.lower()}
    if p.cmdline:
        names.add(p.cmdline[0].rsplit("/", 1)[-1].lower())
    return names


def is_game(p: Proc) -> bool:
    names = _names(p)
    if names & _NOT_GAME:
        return False
    if names & _GAME_NAMES or any(n.endswith(".exe") for n in names):
        return True
    text = " ".join([p.exe, *p.cmdline[:4]]).lower()
    return any(tok in text for tok in _GAME_TOKENS)


def is_compiler(p: Proc) -> bool:
    return bool(_names(p) & _COMPILERS)


def is_build_driver(p: Proc) -> bool:
    return bool(_names(p) & _BUILD_DRIVERS)


def is_media(p: Proc) -> bool:
    return bool(_names(p) & _MEDIA)


def is_interactive_app(p: Proc) -> bool:
    return bool(_names(p) & _INTERACTIVE)


def is_launcher(p: Proc) -> bool:
    """A shell or wrapper whose identity is its children's (``sh -c``, ``timeout``...)."""
    return base_name(p).rstrip("0123456789.") in _SHELLS or p.comm in _SHELLS


def subtree(procs: Iterable[Proc], root: int) -> list[Proc]:
    """``root`` and all its descendants found in ``procs`` (root first)."""
    by_pid = {p.pid: p for p in procs}
    children: dict[int, list[int]] = defaultdict(list)
    for p in by_pid.values():
        if p.pid != p.ppid:
            children[p.ppid].append(p.pid)
    out, stack, seen = [], [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        if pid in by_pid:
            out.append(by_pid[pid])
        stack.extend(children.get(pid, ()))
    return out


def _ancestors(p: Proc, by_pid: dict[int, Proc]) -> Iterable[Proc]:
    seen = {p.pid}
    while p.ppid in by_pid and p.ppid not in seen:
        p = by_pid[p.ppid]
        seen.add(p.pid)
        yield p


def _under_build(lineage: list[Proc]) -> bool:
    """A build driver up the tree, reached only through shells, wrappers and toolchain
    processes: a test suite or an app started by ``make run`` is not a build."""
    for a in lineage:
        if is_build_driver(a):
            return True
        if not (is_compiler(a) or _names(a) & _CHAIN):
            return False
    return False


def busy_pids(
    procs: Sequence[Proc], ncpus: int, runnable: Mapping[int, float] | None = None
) -> tuple[set[int], bool]:
    """(CPU-bound pids, machine saturated?).

    On a saturated machine a CPU-bound process gets only its fair share, so the line drops
    to a fraction of that share; ``runnable`` (pid -> mean runnable threads over the window,
    from schedstat) marks a process that wanted a CPU most of the time as CPU-bound regardless.
    """
    total = sum(p.cpu_percent for p in procs) / 100.0
    candidates = [p for p in procs if p.cpu_percent >= ACTIVE]
    saturated = bool(candidates) and total >= 0.8 * ncpus
    line = BUSY
    if saturated:
        line = max(ACTIVE, min(BUSY, 0.6 * 100.0 * ncpus / len(candidates)))
    runnable = runnable or {}
    busy = {p.pid for p in procs if p.cpu_percent >= line or runnable.get(p.pid, 0.0) >= RUNNABLE}
    return busy, saturated


def attribute(
    procs: Sequence[Proc],
    ncpus: int,
    foreground: int | None = None,
    runnable: Mapping[int, float] | None = None,
) -> dict[int, tuple[str, str]]:
    """pid -> (kind, why) for every active process; kind "other" when nothing matches."""
    by_pid = {p.pid: p for p in procs}
    fg_tree = {p.pid for p in subtree(procs, foreground)} if foreground else set()
    active = [p for p in procs if p.cpu_percent >= ACTIVE]
    has_player = any(is_media(p) for p in active)
    busy, saturated = busy_pids(procs, ncpus, runnable)
    hog = {pid for pid in busy if saturated or by_pid[pid].cpu_percent >= 80.0
           or (runnable or {}).get(pid, 0.0) >= RUNNABLE}
    # Same-executable groups of CPU-bound processes: the shape of a batch of workers.
    groups: dict[str, list[Proc]] = defaultdict(list)
    for p in active:
        if p.pid in busy:
            groups[base_name(p)].append(p)
    out: dict[int, tuple[str, str]] = {}
    for p in active:
        lineage = [p, *_ancestors(p, by_pid)]
        if any(is_game(a) for a in lineage) and not (_names(p) & _NOT_GAME):
            out[p.pid] = ("game", "in a Steam/Proton/Wine process tree")
        elif is_compiler(p) or _under_build(lineage):
            out[p.pid] = ("build", "compiler or build-driver tree")
        elif is_media(p) or (has_player and _names(p) & _AUDIO_SERVERS):
            out[p.pid] = ("media", "media player/decoder")
        elif p.pid in fg_tree or is_interactive_app(p):
            out[p.pid] = ("interactive", "foreground or desktop application")
        elif len(groups.get(base_name(p), ())) >= 2 and p.pid in busy:
            out[p.pid] = ("batch", "one of several CPU-bound processes of one executable")
        elif p.pid in hog:
            out[p.pid] = ("batch", "CPU-bound process")
        else:
            out[p.pid] = ("other", "")
    return out


def classify(
    procs: Sequence[Proc],
    ncpus: int,
    *,
    root: int | None = None,
    foreground: int | None = None,
    psi: float | None = None,
    runnable: Mapping[int, float] | None = None,
) -> tuple[str, float, list[str]]:
    """(kind, confidence 0..1, reasons) of the whole system, or of ``root``'s tree.

    ``procs`` must hold the whole process table when ``root`` is given, so that ancestors
    (a game's Steam/Wine launcher, a compiler's make) still count.
    """
    scope = subtree(procs, root) if root is not None else list(procs)
    kinds = attribute(procs, ncpus, foreground, runnable)
    scores: dict[str, float] = defaultdict(float)
    examples: dict[str, list[str]] = defaultdict(list)
    total = 0.0
    for p in scope:
        if p.pid not in kinds:
            continue
        kind, _ = kinds[p.pid]
        cpus = p.cpu_percent / 100.0
        total += cpus
        scores[kind] += cpus
        examples[kind].append(base_name(p))
    reasons = [f"{total:.2f} CPUs busy of {ncpus}"]
    if psi is not None:
        reasons.append(f"CPU pressure {psi:.1f}% (some, avg10)")
    ranked = sorted(((s, k) for k, s in scores.items() if k != "other"), reverse=True)
    idle_line = max(0.1, 0.02 * ncpus)
    if total < idle_line and (not ranked or ranked[0][0] < 0.05):
        conf = 0.95 if total < idle_line / 2 else 0.7
        return "idle", conf, [*reasons, f"below the idle line of {idle_line:.2f} CPUs"]
    if not ranked:
        return "interactive", 0.2, [*reasons, "no clear signal; assuming a desktop session"]
    best, kind = ranked[0]
    second = ranked[1][0] if len(ranked) > 1 else 0.0
    # How much of the busy CPU the winner explains, minus a penalty for a close runner-up.
    conf = max(0.05, min(0.95, (best - 0.5 * second) / total))
    n = len(examples[kind])
    kinds_seen = ", ".join(f"{k} {s:.2f}" for s, k in ranked)
    reasons.append(f"{kind}: {n} process(es) holding {best:.2f} CPUs ({kinds_seen})")
    if second and second > 0.5 * best:
        reasons.append("ambiguous: a second kind is close")
    return kind, round(conf, 2), reasons
