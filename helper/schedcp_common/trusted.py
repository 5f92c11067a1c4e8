"""Where a packaged ``scx_*`` scheduler must be for the helper to run it: a root-owned file,
not group/world-writable, in a root-owned chain of directories. The helper enforces this
(``schedcp_helper.scxrun`` turns these errors into its own); the tray asks the same question
to show which schedulers are installed, so the two can never disagree."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

TRUSTED_DIRS = (Path("/usr/bin"), Path("/usr/sbin"), Path("/usr/local/bin"),
                Path("/usr/local/sbin"))
BINARY_RE = re.compile(r"^scx_[a-z0-9_]+$")


class NotTrusted(Exception):
    """The name is not an scx_* scheduler, or the file is not where only root can place it."""


class NotInstalled(Exception):
    """No file of that name in any of the directories searched."""


def check_trusted(path: Path) -> None:
    """Refuse unless ``path`` is a root-owned regular file only root can modify or replace."""
    try:
        st = os.lstat(path)
    except OSError as e:
        raise NotTrusted(f"{path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotTrusted(f"{path} is not a plain regular file (symlinks are refused)")
    _check_owner(path, st, "file")
    if not st.st_mode & stat.S_IXUSR:
        raise NotTrusted(f"{path} is not executable")
    real = Path(os.path.realpath(path.parent))
    for d in (real, *real.parents):  # nearest first: the error names the culprit
        _check_owner(d, os.stat(d), "directory")


def _check_owner(path: Path | str, st: os.stat_result, what: str) -> None:
    if st.st_uid != 0:
        raise NotTrusted(f"{what} {path} is owned by uid {st.st_uid}, not root")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise NotTrusted(f"{what} {path} is group- or world-writable "
                         f"(mode {stat.S_IMODE(st.st_mode):o})")


def find_binary(name: str, extra_dirs: Iterable[Path] = ()) -> Path:
    """The trusted path of ``scx_<name>``: the fixed system dirs first, then ``extra_dirs``."""
    if not BINARY_RE.match(name):
        raise NotTrusted(f"{name!r} is not an scx_* scheduler name")
    dirs = [*TRUSTED_DIRS, *(Path(d) for d in extra_dirs)]
    for d in dirs:
        candidate = d / name
        if os.path.lexists(candidate):
            check_trusted(candidate)
            return candidate
    raise NotInstalled(f"{name} is not installed in {', '.join(map(str, dirs))}")
