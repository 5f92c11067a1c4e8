"""A minimal read-only root for guests that run untrusted code (the verifier's trials).

Sharing the host's ``/`` with a guest that loads a hostile scheduler as root hands a BPF
verifier bug every host secret (``/etc/shadow``, the helper's token key). A trial needs far
less: Python's standard library, the helper package, the kit's libbpf, the workload probe,
their shared libraries and a static busybox for the shell. This mirrors exactly those files at
their host paths into a root-owned tree, cached by the sources' names, sizes and mtimes, so
argv and environment work unchanged in the guest and nothing else is there to read.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from .kit import cache_dir

SKIP_STDLIB = frozenset({"site-packages", "dist-packages", "test", "idlelib", "tkinter",
                         "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "unittest"})
LDD_RE = re.compile(r"(/\S+\.so[^\s]*)")
PRUNE_AFTER_S = 24 * 3600
MOUNT_POINTS = ("proc", "sys", "dev", "run", "tmp", "mnt", "root", "etc", "var/tmp")


class GuestRootError(Exception):
    """The minimal root cannot be built; the message says what is missing."""


def python_files() -> tuple[Path, list[Path]]:
    """The real interpreter and the standard library's top folder."""
    exe = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    return exe, [stdlib]


def _walk(top: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in SKIP_STDLIB or Path(dirpath) != top]
        out += [Path(dirpath) / f for f in filenames]
    return out


def _is_elf(f: Path) -> bool:
    if not (f.suffix == ".so" or ".so." in f.name or os.access(f, os.X_OK)) or not f.is_file():
        return False
    with f.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def shared_libs(binaries: list[Path]) -> set[Path]:
    """Every shared library (and the dynamic loader) the binaries need, by ldd."""
    libs: set[Path] = set()
    for b in binaries:
        r = subprocess.run(["ldd", str(b)], capture_output=True, text=True)
        for m in LDD_RE.finditer(r.stdout):
            p = Path(m[1])
            if p.exists():
                libs.add(p)
                libs.add(Path(os.path.realpath(p)))
    return libs


def build(files: list[Path], trees: list[Path], busybox: Path) -> Path:
    """The cached root holding ``files``, every file under ``trees`` (minus tests and
    site-packages below a tree's top) and the libraries all ELF files among them need."""
    all_files = [Path(f) for f in files]
    for t in trees:
        all_files += _walk(t)
    key = hashlib.sha256(str(busybox).encode())
    for f in sorted(set(all_files)):
        st = f.stat()
        key.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    dest = cache_dir() / "guestroot" / key.hexdigest()[:16]
    if dest.is_dir():
        os.utime(dest)  # in use: not pruned
        return dest
    _prune(dest.parent)
    all_files = sorted(set(all_files) | shared_libs([f for f in all_files if _is_elf(f)]))
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    try:
        for f in all_files:
            if not f.is_absolute():
                raise GuestRootError(f"{f} is not an absolute path")
            target = tmp / str(f).lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)  # symlinks dereferenced: their targets may be elsewhere
        for d in MOUNT_POINTS:
            (tmp / d).mkdir(parents=True, exist_ok=True)
        (tmp / "bin").mkdir(exist_ok=True)
        shutil.copy2(busybox, tmp / "bin" / "busybox")
        for name in ("sh", "env"):
            link = tmp / ("usr/bin" if name == "env" else "bin") / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to("/bin/busybox")
        for p in [tmp, *tmp.rglob("*")]:
            if not p.is_symlink():
                os.chmod(p, (p.stat().st_mode & 0o755) | (0o555 if p.is_dir() else 0o444))
        tmp.chmod(0o755)
        try:
            tmp.rename(dest)
        except OSError:  # a concurrent builder won; same content
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _prune(folder: Path) -> None:
    """Trees unused for a day go (each source change makes a new one, ~100 MB)."""
    if not folder.is_dir():
        return
    for old in folder.iterdir():
        try:
            if old.is_dir() and time.time() - old.stat().st_mtime > PRUNE_AFTER_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
