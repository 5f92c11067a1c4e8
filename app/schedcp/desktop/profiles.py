"""Per-app profiles: "when this app runs, run that scheduler", and the file they are kept in.

What watches for the apps and applies the profiles is :mod:`schedcp.desktop.profilewatch`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..vocabulary import DEFAULT_GOAL, GOALS
from .settings import atomic_write, data_dir

log = logging.getLogger("schedcp.desktop.profiles")
POLICY_RE = re.compile(r"^[a-z0-9_]{1,48}$")
TUNABLE_RE = re.compile(r"^[a-z0-9_]{1,48}$")
MAX_PROFILES = 500


@dataclass
class Profile:
    app_id: str
    name: str
    policy: str
    tunables: dict[str, int | bool | str] = field(default_factory=dict)
    goal: str = DEFAULT_GOAL
    auto_apply: bool = True
    # another tool's scheduler attached (scx_loader, scx.service): stop it while this app runs
    # and give it back after (False: leave it, and say the profile could not apply)
    take_over: bool = False
    enabled: bool = True  # off: kept, but neither applied nor offered when the app starts

    @property
    def when(self) -> str:
        """The one per-profile choice: "auto" (apply when the app starts), "ask" or "off"."""
        return "off" if not self.enabled else ("auto" if self.auto_apply else "ask")

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.app_id, str) or not self.app_id or len(self.app_id) > 4096:
            out.append("app_id must be a non-empty string")
        if not isinstance(self.name, str) or len(self.name) > 256:
            out.append("name must be a string of at most 256 characters")
        if not isinstance(self.policy, str) or not POLICY_RE.match(self.policy):
            out.append(f"policy must be a policy name ([a-z0-9_]+), not {self.policy!r}")
        if not isinstance(self.tunables, dict):
            out.append("tunables must be a mapping")
        else:
            for k, v in self.tunables.items():
                if not isinstance(k, str) or not TUNABLE_RE.match(k):
                    out.append(f"tunable name {k!r} is not [a-z0-9_]+")
                elif not isinstance(v, (int, bool, str)) or (isinstance(v, str) and len(v) > 256):
                    out.append(f"tunable {k} must be an integer, true/false or a short string")
        if self.goal not in GOALS:
            out.append(f"goal must be one of {', '.join(GOALS)}, not {self.goal!r}")
        if not isinstance(self.auto_apply, bool):
            out.append("auto_apply must be true or false")
        if not isinstance(self.take_over, bool):
            out.append("take_over must be true or false")
        if not isinstance(self.enabled, bool):
            out.append("enabled must be true or false")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        known = {k: d[k] for k in ("app_id", "name", "policy", "tunables", "goal", "auto_apply",
                                   "take_over", "enabled") if k in d}
        return cls(**known)


class ProfileStore:
    """``profiles.json`` in the data folder. Written atomically; a file that cannot be read as
    profiles is moved aside (``profiles.json.bad-<time>``, for the user to look at) and the
    store starts empty, rather than refusing to start or silently overwriting it."""

    def __init__(self, path: Path | None = None):
        self.path = path or data_dir() / "profiles.json"
        self._lock = threading.RLock()
        self._items: dict[str, Profile] = {}
        self.set_aside: Path | None = None  # where a bad file went, if one did
        self.version = 0  # bumped on every change (the watcher caches what it matches)
        self._listeners: list[Callable[[], None]] = []
        self._load()

    def add_listener(self, cb: Callable[[], None]) -> None:
        """``cb()`` after every change (from the thread that made it)."""
        self._listeners.append(cb)

    def remove_listener(self, cb: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(cb)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            try:
                cb()
            except Exception:
                log.exception("profile store listener failed")

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as e:
            log.warning("cannot read %s: %s", self.path, e)
            return
        try:
            data = json.loads(text)
            raw = data["profiles"] if isinstance(data, dict) else None
            if not isinstance(raw, list):
                raise ValueError("no profiles list")
            items = {}
            for d in raw:
                p = Profile.from_dict(d)
                if p.problems():
                    raise ValueError(f"{p.app_id}: {'; '.join(p.problems())}")
                items[p.app_id] = p
        except (ValueError, TypeError, KeyError) as e:
            aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
                self.set_aside = aside
            log.warning("%s is not a profiles file (%s); set aside as %s", self.path, e, aside)
            return
        self._items = items

    def _save(self) -> None:
        data = {"version": 1, "profiles": [asdict(p) for p in self._items.values()]}
        atomic_write(self.path, json.dumps(data, indent=1) + "\n")

    def list(self) -> list[Profile]:
        with self._lock:
            return sorted(self._items.values(), key=lambda p: p.name.lower())

    def get(self, app_id: str) -> Profile | None:
        with self._lock:
            return self._items.get(app_id)

    def put(self, p: Profile) -> None:
        """Add or replace; ValueError says what is wrong with the profile."""
        problems = p.problems()
        if problems:
            raise ValueError("; ".join(problems))
        with self._lock:
            if p.app_id not in self._items and len(self._items) >= MAX_PROFILES:
                raise ValueError(f"at most {MAX_PROFILES} profiles")
            self._items[p.app_id] = Profile.from_dict(asdict(p))  # a copy: callers may mutate
            self.version += 1
            self._save()
        self._changed()

    def delete(self, app_id: str) -> None:
        with self._lock:
            if self._items.pop(app_id, None) is None:
                return
            self.version += 1
            self._save()
        self._changed()

    def count(self) -> int:
        return len(self._items)
