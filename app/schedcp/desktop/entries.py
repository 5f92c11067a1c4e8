"""Names people know apps by (issue #18 item 8): the Name of the app's .desktop entry
(freedesktop Desktop Entry spec: Exec's program, or TryExec, matched by file name), else the
title of its window; never the bare executable when either is known ("SuperTuxKart", not
"supertuxkart" or "python3")."""

from __future__ import annotations

import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

_lock = threading.Lock()
_cache: dict[tuple[str, ...], dict[str, DesktopApp]] = {}


@dataclass(frozen=True)
class DesktopApp:
    name: str
    icon: str
    game: bool  # Categories lists Game


def _dirs() -> tuple[str, ...]:
    home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    rest = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return tuple(str(Path(d) / "applications") for d in (home, *rest.split(":")) if d)


def _parse(path: Path) -> tuple[list[str], DesktopApp] | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
            continue
        if section != "[Desktop Entry]" or "=" not in line:
            continue
        k, _, v = line.partition("=")
        fields.setdefault(k.strip(), v.strip())
    if fields.get("Type", "Application") != "Application" or fields.get("NoDisplay") == "true":
        return None
    if not fields.get("Name"):
        return None
    programs = []
    for key in ("TryExec", "Exec"):
        try:
            words = shlex.split(fields.get(key, ""))
        except ValueError:
            continue
        words = [w for w in words if "=" not in w or w.startswith("/")]  # skip env VAR=x
        if words and os.path.basename(words[0]) == "env" and len(words) > 1:
            words = words[1:]
        if words:
            programs.append(os.path.basename(words[0]))
    cats = fields.get("Categories", "").split(";")
    return programs, DesktopApp(fields["Name"], fields.get("Icon", ""), "Game" in cats)


def _index(dirs: tuple[str, ...]) -> dict[str, DesktopApp]:
    with _lock:
        if dirs in _cache:
            return _cache[dirs]
    out: dict[str, DesktopApp] = {}
    for d in reversed(dirs):  # earlier directories win (the user's own first)
        try:
            files = sorted(Path(d).rglob("*.desktop"))
        except OSError:
            continue
        for f in files:
            parsed = _parse(f)
            if parsed is None:
                continue
            programs, app = parsed
            for prog in programs:
                out[prog] = app
    with _lock:
        _cache[dirs] = out
    return out


def lookup(exe: str, dirs: tuple[str, ...] | None = None) -> DesktopApp | None:
    """The .desktop entry whose program is ``exe`` (by file name), or None."""
    if not exe:
        return None
    return _index(dirs if dirs is not None else _dirs()).get(os.path.basename(exe))


def forget() -> None:
    """Drop the cache (new apps installed, or a test's own folders)."""
    with _lock:
        _cache.clear()
