"""What "an application" is: a stable identity for a process (profiles are keyed by it) and the
process worth optimizing when the one in front is only a launcher.

Native programs are their resolved executable ("exe:/usr/bin/foo"; a script run by an
interpreter is the script). Games run through Steam, Proton or Wine look like wine preloaders,
``python3 proton`` and ``reaper`` to the kernel; they are named by their Steam app id where one
is visible (``SteamAppId`` / ``AppId=N``), else by the Windows executable ("wine:game.exe").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import PureWindowsPath

from ..analysis import procfs as proc

INTERPRETERS = re.compile(r"^(python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|bash|sh|dash|"
                          r"zsh|lua[0-9.]*|php[0-9.]*)$")
WINE_LOADERS = re.compile(r"^(wine|wine64|wine-preloader|wine64-preloader|wineserver)$")
# processes Wine and Proton start around every game: never the game itself
WINE_INFRA = frozenset({
    "wineserver", "services.exe", "winedevice.exe", "plugplay.exe", "svchost.exe",
    "explorer.exe", "rpcss.exe", "conhost.exe", "start.exe", "tabtip.exe", "wineboot.exe",
    "steam.exe", "rundll32.exe", "winemenubuilder.exe", "iexplore.exe", "cmd.exe",
    "steamwebhelper.exe", "crashhandler.exe", "easyanticheat.exe", "mscorsvw.exe",
})
# Steam's and the Steam Runtime's own launchers
STEAM_INFRA = re.compile(r"^(steam|steamwebhelper|reaper|steam-runtime.*|pressure-vessel.*|"
                         r"srt-bwrap|bwrap|steam-launch-wrapper|proton|python3?[0-9.]*|sh|bash|"
                         r"gameoverlayui|fossilize_replay|wineserver)$")
APPID_ARG = re.compile(r"^AppId=(\d+)$")
NAMES = {"firefox-esr": "Firefox", "firefox": "Firefox", "chromium": "Chromium",
         "chrome": "Chrome", "code": "VS Code", "steam": "Steam"}


@dataclass(frozen=True)
class AppIdentity:
    app_id: str  # stable across runs: "exe:/usr/bin/foo", "steam:<appid>", "wine:<game.exe>"
    name: str  # display name
    exe: str  # resolved executable path ("" if unreadable)
    kind: str  # "game" | "app"


def _environ(pid: int) -> dict[str, str]:
    raw = proc.read_text(f"/proc/{pid}/environ")
    out = {}
    for item in raw.split("\0"):
        k, sep, v = item.partition("=")
        if sep:
            out[k] = v
    return out


def windows_exe(cmdline: list[str], comm: str = "") -> str:
    """The Windows program a Wine process runs ("Game.exe"), or "" when it runs none."""
    for arg in cmdline[:3]:
        if arg.lower().endswith(".exe"):
            return PureWindowsPath(arg).name
    return comm if comm.lower().endswith(".exe") else ""


def steam_app_id(pid: int, hops: int = 12) -> str:
    """The Steam app id a process was launched for: its environment, else an ancestor's
    ``reaper SteamLaunch AppId=N`` command line. "" when none."""
    env = _environ(pid)
    for key in ("SteamAppId", "SteamGameId", "STEAM_COMPAT_APP_ID"):
        v = env.get(key, "")
        if v.isdigit() and v != "0":
            return v
    p = pid
    for _ in range(hops):
        for arg in proc.cmdline(p)[:8]:
            m = APPID_ARG.match(arg)
            if m and m.group(1) != "0":
                return m.group(1)
        p = proc.ppid(p)
        if p <= 1:
            break
    return ""


def _is_wine(exe: str, cmdline: list[str], comm: str) -> bool:
    base = os.path.basename(exe)
    return bool(WINE_LOADERS.match(base)) or (bool(windows_exe(cmdline, comm))
                                              and not base.startswith("python"))


def _script(cmdline: list[str]) -> str:
    """An interpreter's script argument, resolved, if it is a file."""
    for arg in cmdline[1:3]:
        if arg.startswith("-"):
            if arg in ("-m", "-c", "-e"):
                return ""
            continue
        path = os.path.realpath(arg) if os.path.isabs(arg) or "/" in arg else ""
        return path if path and os.path.isfile(path) else ""
    return ""


def identify(pid: int) -> AppIdentity | None:
    """The application a process belongs to; None if it is gone or unreadable."""
    comm = proc.comm(pid)
    if not comm:
        return None
    exe = proc.exe(pid)
    cmdline = proc.cmdline(pid)
    win = windows_exe(cmdline, comm)
    if _is_wine(exe, cmdline, comm):
        if win and win.lower() not in WINE_INFRA:
            appid = steam_app_id(pid)
            key = f"steam:{appid}" if appid else f"wine:{win.lower()}"
            return AppIdentity(key, win, exe, "game")
        name = win or os.path.basename(exe) or comm  # Wine's own processes
        return AppIdentity(f"wine:{name.lower()}", name, exe, "app")
    base = os.path.basename(exe)
    if exe and INTERPRETERS.match(base):
        script = _script(cmdline)
        if script:
            exe = script
            base = os.path.basename(script)
    if exe and not STEAM_INFRA.match(base):
        appid = steam_app_id(pid)
        if appid:  # a native game launched by Steam
            return AppIdentity(f"steam:{appid}", base, exe, "game")
    if not exe:
        return AppIdentity(f"comm:{comm}", comm, "", "app")
    from .entries import lookup  # the name people know it by, from its .desktop entry

    entry = lookup(exe)
    if entry is not None:
        return AppIdentity(f"exe:{exe}", entry.name, exe, "game" if entry.game else "app")
    return AppIdentity(f"exe:{exe}", NAMES.get(base, base), exe, "app")


def named(ident: AppIdentity, title: str) -> AppIdentity:
    """``ident`` shown by its window's title when it has no better name than its program's
    file name (a script, an interpreter, a program without a .desktop entry)."""
    title = " ".join(title.split())[:80]
    base = os.path.basename(ident.exe) if ident.exe else ""
    known = ident.name not in (base, NAMES.get(base, "\0"))  # from .desktop, Steam or Wine
    if not title or known or ident.app_id.startswith(("steam:", "wine:")):
        return ident
    return replace(ident, name=title)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pid = int(entry)
            kids.setdefault(proc.ppid(pid), []).append(pid)
    return kids


def descendants(pid: int) -> list[int]:
    kids = _children_map()
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _is_launcher(ident: AppIdentity | None, pid: int) -> bool:
    if ident is None or ident.kind == "game":
        return False
    base = os.path.basename(proc.exe(pid))
    return bool(STEAM_INFRA.match(base) or WINE_LOADERS.match(base)
                or ident.exe.endswith("/proton"))


def app_root(pid: int) -> int:
    """The process to optimize for ``pid``: itself, unless it is a launcher (Steam, reaper,
    Proton, a Wine loader) with a game below it, then the busiest game process below."""
    ident = identify(pid)
    if not _is_launcher(ident, pid):
        return pid
    games = [(p, identify(p)) for p in descendants(pid)]
    games = [(p, i) for p, i in games if i is not None and i.kind == "game"]
    if not games:
        return pid
    # the game's main process: the one with the most CPU among the most common identity
    counts: dict[str, int] = {}
    for _, i in games:
        counts[i.app_id] = counts.get(i.app_id, 0) + 1
    return max(games, key=lambda g: (counts[g[1].app_id], proc.cpu_ticks(g[0]), -g[0]))[0]
