"""Who hostile input is handled as, and the one way a child drops root before exec.

clang, the static checks and qemu all process what a user or an AI wrote. When the helper is
root they run as ``nobody``: supplementary groups dropped, then the gid and the uid, then
``no_new_privs`` so no setuid binary or file capability can bring root back. Not a dedicated
system user: the helper's verify worker runs one stage at a time, so no other ``nobody``
process of ours runs beside a guest, and ``nobody`` exists everywhere (CI containers, the
whole-system test machine) without an install step that could be missing.
"""

from __future__ import annotations

import ctypes
import os
import pwd
from pathlib import Path

import platformdirs

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
ROOT_CACHE = Path("/var/cache/schedcp")


def cache_home() -> Path:
    """Our caches' top: root's in ``/var/cache/schedcp`` (the installed helper's too), else
    ``~/.cache/schedcp``. Not root's home: qemu runs as ``nobody`` when we are root, and guests
    read the kit's tools and the workload probe at their host paths, which ``nobody`` cannot
    reach under a 0700 ``/root``."""
    return ROOT_CACHE if os.geteuid() == 0 else platformdirs.user_cache_path("schedcp")


def sandbox_ids() -> tuple[int | None, int | None]:
    """Who untrusted input is handled as: ``nobody`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None, None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def drop_to(uid: int, gid: int, groups: tuple[int, ...] = ()) -> None:
    """In a child before exec: become ``uid``/``gid`` with only ``groups`` beside, for good."""
    os.setgroups(list(groups))
    os.setgid(gid)
    os.setuid(uid)
    no_new_privs()


def no_new_privs() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def die_with(parent: int) -> None:
    """In a child before exec: SIGKILL when ``parent`` dies. Set after any uid change, which
    clears it; a parent that died before this leaves the child orphaned, so it exits."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
