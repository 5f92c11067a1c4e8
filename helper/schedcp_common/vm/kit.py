"""The sched_ext guest kit: a kernel, bpftool, libbpf and headers, trusted only by sha256.

Hosts without sched_ext run schedulers in a qemu guest. The kit is built from Debian's
linux-source-6.12 by ``kernel/build-kernel.sh`` (~25 min on 2 cores), or imported from a
prebuilt copy whose ``MANIFEST.sha256`` matches. Either way every use re-checks the manifest,
so a truncated or tampered file is a clear error instead of a confusing guest failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

MANIFEST = "MANIFEST.sha256"
BUILD_SCRIPT = Path(__file__).with_name("kernel") / "build-kernel.sh"


class KitError(Exception):
    """The guest kit is missing, corrupt or cannot be obtained; the message says what to do."""


@dataclass(frozen=True)
class Kit:
    """A verified kit folder: ``bzImage-<release>``, ``config-<release>``, bin/, lib/, include/."""

    root: Path
    release: str

    @property
    def bzimage(self) -> Path:
        return self.root / f"bzImage-{self.release}"

    @property
    def config(self) -> Path:
        return self.root / f"config-{self.release}"

    @property
    def bpftool(self) -> Path:
        return self.root / "bin" / "bpftool"

    @property
    def libdir(self) -> Path:
        return self.root / "lib"

    @property
    def include(self) -> Path:
        return self.root / "include"

    @property
    def libbpf(self) -> Path:
        """The real libbpf shared object (not a soname link)."""
        found = sorted(p for p in self.libdir.glob("libbpf.so.*.*.*") if not p.is_symlink())
        if not found:
            raise KitError(f"guest kit {self.root}: no lib/libbpf.so.X.Y.Z")
        return found[-1]

    @classmethod
    def load(cls, root: Path) -> Kit:
        """Open and verify the kit at ``root``; raise KitError naming the first bad file."""
        entries = read_manifest(root)
        for digest, rel in entries:
            path = root / rel
            if not path.is_file():
                raise KitError(f"guest kit {root}: {rel} is missing")
            if sha256(path) != digest:
                raise KitError(
                    f"guest kit {root}: {rel} does not match {MANIFEST} (corrupt or modified); "
                    f"remove {root} and run `schedcp vm-kit` to obtain it again"
                )
        kernels = [rel for _, rel in entries if rel.startswith("bzImage-")]
        if len(kernels) != 1:
            raise KitError(f"guest kit {root}: {MANIFEST} must list exactly one bzImage-*")
        return cls(root=root, release=kernels[0].removeprefix("bzImage-"))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(root: Path) -> list[tuple[str, str]]:
    """Parse ``sha256sum`` output; reject absolute or escaping paths."""
    try:
        text = (root / MANIFEST).read_text()
    except FileNotFoundError:
        raise KitError(f"guest kit {root}: no {MANIFEST}") from None
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        rel = rel.strip()
        if len(digest) != 64 or not rel or rel.startswith("/") or ".." in Path(rel).parts:
            raise KitError(f"guest kit {root}: {MANIFEST} line {n} is malformed: {line!r}")
        entries.append((digest.lower(), rel))
    if not entries:
        raise KitError(f"guest kit {root}: {MANIFEST} is empty")
    return entries


def cache_dir() -> Path:
    """Where kits live: ``$SCHEDCP_VM_CACHE`` or ``~/.cache/schedcp/vm``."""
    env = os.environ.get("SCHEDCP_VM_CACHE")
    return Path(env) if env else platformdirs.user_cache_path("schedcp") / "vm"


def shared_dir() -> Path | None:
    """A prebuilt kit to import: ``$SCHEDCP_SHARED_VM``, else ``../shared/vm`` beside a checkout."""
    env = os.environ.get("SCHEDCP_SHARED_VM")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3]  # helper/schedcp_common/vm/kit.py
    candidate = checkout.parent / "shared" / "vm"
    return candidate if (candidate / MANIFEST).is_file() else None


def cached_kits(cache: Path) -> list[Path]:
    if not cache.is_dir():
        return []
    return sorted(p for p in cache.iterdir() if (p / MANIFEST).is_file())


def find_kit(cache: Path | None = None, shared: Path | None = None) -> Kit:
    """The newest verified kit in the cache, importing the shared prebuilt copy if needed.

    Never builds on its own (that takes ~25 min): the error says how to.
    """
    cache = cache or cache_dir()
    kits = cached_kits(cache)
    if kits:
        return Kit.load(kits[-1])
    shared = shared or shared_dir()
    if shared is not None:
        return import_kit(shared, cache)
    raise KitError(
        f"no sched_ext guest kernel in {cache}. Run `schedcp vm-kit --build` to build one from "
        "Debian's linux-source-6.12 (~25 min, needs apt), or set SCHEDCP_SHARED_VM to a "
        "prebuilt kit with a MANIFEST.sha256"
    )


def import_kit(src: Path, cache: Path) -> Kit:
    """Copy a prebuilt kit into the cache after checking it against its own manifest."""
    try:
        kit = Kit.load(src)
    except KitError as e:
        raise KitError(f"prebuilt kit rejected: {e}") from None
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / kit.release
    tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=cache))
    try:
        for name in ("bin", "lib", "include"):
            if (src / name).is_dir():
                shutil.copytree(src / name, tmp / name, symlinks=True)
        for name in (kit.bzimage.name, kit.config.name, MANIFEST):
            if (src / name).exists():
                shutil.copy2(src / name, tmp / name)
        _relink(tmp / "lib")
        for p in tmp.rglob("*"):  # the shared copy is read-only; ours must be removable
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o200)
        Kit.load(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Kit.load(dest)


def build_kit(cache: Path | None = None, jobs: int | None = None) -> Kit:
    """Build a kit with the project's script (apt, unpack, configure, compile: ~25 min)."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, JOBS=str(jobs or os.cpu_count() or 2))
    before = set(cached_kits(cache))
    rc = subprocess.call(["bash", str(BUILD_SCRIPT), str(cache)], env=env)
    if rc != 0:
        raise KitError(f"kernel build failed (exit {rc}); its output is above")
    new = [p for p in cached_kits(cache) if p not in before] or cached_kits(cache)
    return Kit.load(new[-1])


def _relink(libdir: Path) -> None:
    """Copies that went through git keep soname links as tiny files naming their target."""
    if not libdir.is_dir():
        return
    for p in libdir.iterdir():
        if p.is_file() and not p.is_symlink() and p.stat().st_size < 256:
            target = p.read_bytes().strip().decode(errors="replace")
            if "/" not in target and (libdir / target).exists() and target != p.name:
                p.unlink()
                p.symlink_to(target)
