"""Build the kernel's own example schedulers (scx_simple, scx_qmap, ...) as test stand-ins.

Tests need real ``scx_*`` binaries to exercise the runner, and Debian 12 packages none. The
kernel source tarball ships ``tools/sched_ext`` with four small ones; this builds them against
the guest kit (its bpftool for skeletons, its libbpf headers and library) instead of the
upstream Makefile, which would first build libbpf and bpftool from source.

The result is cached per kernel release under ``<vm cache>/scx-examples/<release>/`` with
``bin/`` (the schedulers) and ``lib/libbpf.so.1`` (found through RUNPATH ``$ORIGIN/../lib``, so
the binaries need no LD_LIBRARY_PATH: the runner gives children a clean environment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .vm.kit import Kit, cache_dir, find_kit, sha256

TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
REQUIRED = ("scx_simple", "scx_qmap", "scx_central")
OPTIONAL = ("scx_flatcg",)
STAMP = "build.json"
CLANG = "clang-19"


class ExamplesError(RuntimeError):
    """The examples could not be built; the message carries the failing command's output."""


def examples_dir(kit: Kit, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "scx-examples" / kit.release


def build_examples(kit: Kit | None = None, tarball: Path = TARBALL,
                   cache: Path | None = None) -> Path:
    """Return the bin dir holding the built examples, building them first if needed."""
    kit = kit or find_kit()
    dest = examples_dir(kit, cache)
    want = _fingerprint(kit, tarball)
    stamp = _read_stamp(dest)
    if stamp.get("fingerprint") == want and all((dest / "bin" / n).is_file() for n in REQUIRED):
        return dest / "bin"
    dest.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".build-", dir=dest.parent) as tmp:
        work, out = Path(tmp) / "work", Path(tmp) / "out"
        src = _extract(tarball, work)
        (out / "bin").mkdir(parents=True)
        (out / "lib").mkdir()
        shutil.copy2(kit.libdir / "libbpf.so.1.5.0", out / "lib" / "libbpf.so.1")
        built, failed = [], {}
        for name in REQUIRED + OPTIONAL:
            try:
                _build_one(name, src, work / "build", out, kit)
                built.append(name)
            except ExamplesError as e:
                if name in REQUIRED:
                    raise
                failed[name] = str(e)[-2000:]
        stamp = {"fingerprint": want, "built": built, "failed": failed,
                 "seconds": round(time.monotonic() - start, 1)}
        (out / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
        for p in [out, *out.rglob("*")]:  # a trusted-path check wants no group/world write
            p.chmod(p.stat().st_mode & ~0o022)
        if dest.exists():
            shutil.rmtree(dest)
        out.rename(dest)
    return dest / "bin"


def build_info(kit: Kit | None = None, cache: Path | None = None) -> dict:
    """The stamp of the last build: what was built, what failed, how long it took."""
    return _read_stamp(examples_dir(kit or find_kit(), cache))


def _fingerprint(kit: Kit, tarball: Path) -> str:
    st = tarball.stat()
    lib = sha256(kit.libdir / "libbpf.so.1.5.0")[:16]
    return f"{tarball}:{st.st_size}:{int(st.st_mtime)}:{kit.release}:{lib}"


def _read_stamp(dest: Path) -> dict:
    try:
        return json.loads((dest / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def _extract(tarball: Path, work: Path) -> Path:
    """Only ``tools/sched_ext`` (a few hundred KB) out of the ~150 MB tarball."""
    top = tarball.name.removesuffix(".tar.xz")
    member = f"{top}/tools/sched_ext"
    work.mkdir(parents=True)
    _run(["tar", "-xJf", str(tarball), "-C", str(work), member], "extract")
    src = work / member
    if not (src / "scx_simple.bpf.c").is_file():
        raise ExamplesError(f"{tarball} has no {member}/scx_simple.bpf.c")
    return src


def _sys_includes() -> list[str]:
    """The host compiler's include dirs, searched last by the BPF build (as the Makefile does)."""
    out = subprocess.run([CLANG, "-v", "-E", "-"], input="", capture_output=True, text=True,
                         check=False).stderr
    lines = out.split("search starts here:", 1)[-1].split("End of search list.", 1)[0]
    return [arg for d in lines.split() if d.startswith("/") for arg in ("-idirafter", d)]


def _build_one(name: str, src: Path, build: Path, out: Path, kit: Kit) -> None:
    build.mkdir(exist_ok=True)
    bpf_o, linked = build / f"{name}.bpf.o", build / f"{name}.linked.o"
    _run([CLANG, "-g", "-O2", "-mcpu=v3", "-target", "bpf", "-D__TARGET_ARCH_x86",
          "-mlittle-endian", f"-I{src / 'include'}", f"-I{src / 'include' / 'bpf-compat'}",
          f"-I{kit.include}", *_sys_includes(), "-Wall", "-Wno-compare-distinct-pointer-types",
          "-c", str(src / f"{name}.bpf.c"), "-o", str(bpf_o)], name)
    _run([str(kit.bpftool), "gen", "object", str(linked), str(bpf_o)], name)
    skel = _run([str(kit.bpftool), "gen", "skeleton", str(linked), "name", name], name)
    (build / f"{name}.bpf.skel.h").write_text(skel)
    obj = build / f"{name}.o"
    _run(["cc", "-g", "-O2", "-Wall", "-pthread", f"-I{build}", f"-I{kit.include}",
          f"-I{src / 'include'}", f"-I{src}", "-c", str(src / f"{name}.c"), "-o", str(obj)], name)
    _run(["cc", "-o", str(out / "bin" / name), str(obj), str(out / "lib" / "libbpf.so.1"),
          "-Wl,-rpath,$ORIGIN/../lib", "-lelf", "-lz", "-lpthread"], name)


def _run(cmd: list[str], what: str) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, check=False,
                       env={**os.environ, "LC_ALL": "C"})
    if r.returncode != 0:
        raise ExamplesError(f"{what}: `{' '.join(cmd[:3])} ...` failed ({r.returncode}):\n"
                            f"{r.stderr.strip()[-4000:]}")
    return r.stdout


def main() -> int:
    """``python -m schedcp_helper.examples``: build (or find) the examples, print the bin dir."""
    start = time.monotonic()
    bindir = build_examples()
    info = build_info()
    print(json.dumps({"bin": str(bindir), "built": info.get("built"), "failed":
                      sorted(info.get("failed", {})), "build_seconds": info.get("seconds"),
                      "this_call_seconds": round(time.monotonic() - start, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

