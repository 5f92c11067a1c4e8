"""Build the probe once per source version: the guest shares the host's files, so one host
binary serves both, cached under ``~/.cache/schedcp/workload`` by source hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs

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
    """``$CC`` or the first of cc/gcc/clang on PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and (path := shutil.which(name)):
            return path
    raise WorkloadError(
        "no C compiler found (tried $CC, cc, gcc, clang): install one, e.g. "
        "`apt install gcc`, to build the scheduler test workload"
    )


def probe_binary(cache: Path | None = None) -> Path:
    """Path of the compiled probe, building it (atomically) if this source is not cached yet."""
    cache = cache or cache_dir()
    src = SOURCE.read_bytes()
    digest = hashlib.sha256(src + " ".join(CFLAGS + LIBS).encode()).hexdigest()[:16]
    target = cache / f"schedcp-probe-{digest}"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    cc = find_compiler()
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".probe-", dir=cache)
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
