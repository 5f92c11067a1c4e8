"""Build the probe once per source version: the guest shares the host's files, so one host
binary serves both, cached under ``$SCHEDCP_WORKLOAD_CACHE`` (the installed helper's unit sets
/var/cache/schedcp/workload: its home is hidden) or ``~/.cache/schedcp/workload`` by source hash.

The helper builds it with the clang its package depends on (clang-19 pulls in libc6-dev and
libgcc's start files); any cc/gcc found first is used instead."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs

from ..toolchain import CLANG_CANDIDATES

SOURCE = Path(__file__).with_name("probe.c")
CFLAGS = ("-std=c11", "-O2")
LIBS = ("-lm",)


class WorkloadError(RuntimeError):
    """The probe cannot be built, run or understood."""


def cache_dir() -> Path:
    """``$SCHEDCP_WORKLOAD_CACHE`` or ``~/.cache/schedcp/workload``."""
    env = os.environ.get("SCHEDCP_WORKLOAD_CACHE")
    return Path(env) if env else platformdirs.user_cache_path("schedcp") / "workload"


def find_compiler() -> str:
    """``$CC`` or the first of cc/gcc/clang(-NN) on PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc", *CLANG_CANDIDATES):
        if name and (path := shutil.which(name)):
            return path
    raise WorkloadError(
        "no C compiler found (tried $CC, cc, gcc, clang, clang-NN): install one, e.g. "
        "`apt install gcc`, to build the scheduler test workload"
    )


def probe_binary(cache: Path | None = None) -> Path:
    """Path of the compiled probe, building it (atomically) if this source is not cached yet."""
    cache = cache or cache_dir()
    src = SOURCE.read_bytes()
    digest = hashlib.sha256(src + " ".join(CFLAGS + LIBS).encode()).hexdigest()[:16]
    target = cache / f"schedcp-probe-{digest}"
    try:
        cached = target.is_file() and os.access(target, os.X_OK)
    except OSError:  # e.g. a home the service may not enter
        cached = False
    if cached:
        return target
    cc = find_compiler()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe-", dir=cache)
    except OSError as e:
        raise WorkloadError(f"cannot build the probe in {cache}: {e.strerror} (set "
                            "SCHEDCP_WORKLOAD_CACHE to a writable folder)") from None
    os.close(fd)
    try:
        proc = subprocess.run(
            [cc, *CFLAGS, "-o", tmp, str(SOURCE), *LIBS],
            capture_output=True, text=True, timeout=120,
        )
        if proc.returncode != 0:
            raise WorkloadError(f"building the probe with {cc} failed:\n{proc.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)  # concurrent builders race harmlessly: same bytes, atomic rename
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
