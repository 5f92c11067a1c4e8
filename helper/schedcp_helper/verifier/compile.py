"""Stage (a): input checks and a sandboxed ``clang -target bpf``.

Source text may come from an AI or a user: the helper treats it as hostile. The text checks
below are a cheap first filter, and text filters can be talked around (computed includes,
digraphs, line splices, char literals that fool a comment stripper), so the decision is made by
what clang really did: clang runs as ``nobody`` in a root-owned, read-only folder holding only
root-owned copies of the allowed headers, with ``-nostdinc``, without network (its own network
namespace, or the unit's ``PrivateNetwork=``), under CPU, memory, file-size and wall-time limits
and ``-fno-crash-diagnostics``; it writes only to descriptors the helper opened. Its dependency
list (which names ``#embed``-ed files too) must stay inside that folder, and its LLVM IR must hold
no inline assembly beyond empty compiler barriers (file-scope ``asm`` with ``.incbin`` shows there).
Diagnostics are scrubbed to the lines about the source and the allowed headers before the
caller sees them.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from schedcp_common.toolchain import CLANG_CANDIDATES

from ..errors import VerifierUnavailable

MAX_SOURCE_BYTES = 128 * 1024
MAX_OBJECT_BYTES = 16 * 1024 * 1024
CPU_SECONDS = 60
WALL_SECONDS = 90
MEMORY_BYTES = 2 * 1024**3
ALLOWED_INCLUDES = frozenset({
    "schedcp.bpf.h", "vmlinux.h", "bpf_helpers.h", "bpf_tracing.h", "bpf_core_read.h",
    "bpf/bpf_helpers.h", "bpf/bpf_tracing.h", "bpf/bpf_core_read.h",
})
# the header files copied into the sandbox (bpf_helper_defs.h: included by bpf_helpers.h)
HEADER_FILES = ("vmlinux.h", "bpf/bpf_helpers.h", "bpf/bpf_helper_defs.h", "bpf/bpf_tracing.h",
                "bpf/bpf_core_read.h")
SOURCE = "sched.bpf.c"
MODULE_ASM_RE = re.compile(r'^module asm "(?:[^"\\]|\\.)*"', re.M)
INLINE_ASM_RE = re.compile(r'\basm (?:sideeffect )?(?:alignstack )?(?:inteldialect )?(?:unwind )?'
                           r'"((?:[^"\\]|\\.)*)"')
DIAG_RE = re.compile(r"^(?:In file included from )?([^\s:]+):\d+(?::\d+)?[:,]")
COMMENT_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|/\*.*?\*/', re.S)
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
FORBIDDEN = [
    # inline assembly, except the empty-template compiler barrier (asm volatile("" : "+r"(x)))
    (re.compile(r'\b(?:__)?asm(?:__)?\b(?!\s*(?:volatile|__volatile__)?\s*\(\s*""\s*[:)])'),
     "inline assembly"),
    (re.compile(r"\.incbin\b"), ".incbin"),
    (re.compile(r"^\s*#\s*(?:include_next|embed|import)\b", re.M), "#include_next/#embed/#import"),
    (re.compile(r"\b__has_include(?:_next)?\b"), "__has_include"),
    (re.compile(r"^\s*#\s*line\b", re.M), "#line"),
]
CLONE_NEWNET = 0x40000000


class InputError(ValueError):
    """The source was refused before compiling; the message says why."""


class SandboxError(VerifierUnavailable):
    """The sandbox itself could not be set up here: the verifier must not run unboxed."""


class CompileError(Exception):
    """clang failed; ``log`` holds its diagnostics (paths shown relative to the sandbox)."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class CompiledObject:
    data: bytes
    log: str  # clang's warnings, if any


def check_source(source: bytes) -> str:
    """Stage (a) input checks; returns the text."""
    if len(source) > MAX_SOURCE_BYTES:
        raise InputError(f"source is {len(source)} bytes; the limit is {MAX_SOURCE_BYTES}")
    if b"\0" in source:
        raise InputError("source contains NUL bytes")
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"source is not UTF-8 (byte {e.start})") from None
    if not text.strip():
        raise InputError("source is empty")
    code = COMMENT_RE.sub(lambda m: m[0] if m[0][0] == '"' else re.sub(r"[^\n]", " ", m[0]),
                          text)  # blank out comments, keep line numbers and string literals
    for pattern, what in FORBIDDEN:
        if m := pattern.search(code):
            line = code.count("\n", 0, m.start()) + 1
            raise InputError(f"{what} is not allowed in scheduler sources (line {line})")
    for name in INCLUDE_RE.findall(code):
        if name not in ALLOWED_INCLUDES:
            raise InputError(f"#include <{name}> is not allowed; only "
                             f"{', '.join(sorted(ALLOWED_INCLUDES))}")
    return text


def find_clang() -> str:
    for name in CLANG_CANDIDATES:
        path = shutil.which(name, path="/usr/bin:/bin")
        if path:
            return path
    raise CompileError("no clang found in /usr/bin (apt-get install clang-19)")


def sandbox_ids() -> tuple[int | None, int | None]:
    """Who untrusted input is handled as: ``nobody`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None, None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def network_isolated() -> bool:
    """True when this process already sees no network but loopback: the installed unit's
    ``PrivateNetwork=yes`` (whose ``RestrictNamespaces=yes`` also forbids making another)."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return {line.split(":", 1)[0].strip() for line in lines} <= {"lo"}


def needs_netns() -> bool:
    """Root with a network must give clang a fresh network namespace; without it (not root:
    a developer's own clang) there is nothing to take away that the user could not reach."""
    return os.geteuid() == 0 and not network_isolated()


def _sandbox(uid: int | None, gid: int | None, netns: bool | None = None):
    """The child's set-up before exec. The drop to ``uid``/``gid`` is done here rather than
    with subprocess's ``user=``/``group=`` because the network namespace must be made while
    still root, and subprocess drops before it calls this. A namespace that cannot be made is
    fatal: the child exits before exec and the parent raises :class:`SandboxError`."""
    netns = needs_netns() if netns is None else netns

    def setup() -> None:  # runs in the child before exec
        libc = ctypes.CDLL(None, use_errno=True)
        if netns and libc.unshare(CLONE_NEWNET) != 0:  # no network: a fresh, empty namespace
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        if uid is not None and gid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        for res, val in ((resource.RLIMIT_CPU, CPU_SECONDS), (resource.RLIMIT_AS, MEMORY_BYTES),
                         (resource.RLIMIT_FSIZE, MAX_OBJECT_BYTES),
                         (resource.RLIMIT_NOFILE, 256), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (val, val))

    return setup


def sandbox_failed(what: str) -> SandboxError:
    """The error for a sandboxed child that could not be started (its set-up failed)."""
    if needs_netns():
        return SandboxError(
            f"the {what} sandbox could not be set up: no private network namespace could be "
            "made (this process has a network and may not create namespaces; the installed "
            "unit runs the helper with PrivateNetwork=yes)")
    return SandboxError(f"the {what} sandbox could not be set up (dropping privileges failed)")


def _deps(text: str) -> list[str]:
    """The prerequisites of a make rule as clang writes it (``out: a b \\`` lines)."""
    body = text.replace("\\\n", " ").split(":", 1)[1] if ":" in text else ""
    return [p.replace("\\ ", " ") for p in re.split(r"(?<!\\)\s+", body.strip()) if p]


def _outside(root: Path, deps: list[str]) -> list[str]:
    inc = (root / "include").resolve()
    src = (root / SOURCE).resolve()
    bad = []
    for dep in deps:
        real = (root / dep).resolve()
        if real != src and not real.is_relative_to(inc):
            bad.append(dep)
    return bad


def _foreign_asm(ir: str) -> list[str]:
    """Inline assembly in clang's LLVM IR: any file-scope ``module asm`` (``.incbin`` lives
    there) and any asm statement whose template is not empty (empty = a compiler barrier)."""
    found = [m[0][:60] for m in MODULE_ASM_RE.finditer(ir)]
    found += [m[0][:60] for m in INLINE_ASM_RE.finditer(ir) if m[1]]
    return found


def scrub(log: str) -> str:
    """Keep only diagnostics located in the source or the allowed headers (with their snippet
    lines): a diagnostic inside any other file could quote that file's contents."""
    kept, keep = [], True
    for line in log.splitlines():
        m = DIAG_RE.match(line)
        if m:
            where = m[1]
            keep = where == SOURCE or where.startswith("include/")
        elif line.startswith(("clang", "error:")) or re.match(r"\d+ (?:error|warning)", line):
            keep = True
        if keep:
            kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")


def _copy_headers(inc: Path, include_dirs: list[Path], extra_headers: list[Path]) -> None:
    (inc / "bpf").mkdir(parents=True)
    for name in HEADER_FILES:
        for d in include_dirs:
            for candidate in (d / name, d / Path(name).name):
                if candidate.is_file():
                    shutil.copyfile(candidate, inc / name)
                    break
            else:
                continue
            break
    for header in extra_headers:
        shutil.copyfile(header, inc / header.name)
    for p in [inc, *inc.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


MAX_LOG_BYTES = 1 << 20


def _read_back(f, limit: int) -> bytes:
    f.seek(0)
    return f.read(limit)


def compile_source(source: bytes, include_dirs: list[Path], extra_headers: list[Path] = ()
                   ) -> CompiledObject:
    """Check and compile ``source`` in the sandbox; headers are copied in, nothing else is seen.

    The folder, the source and the headers are root's and read-only to clang, which writes
    nothing there: its output (dependency list, LLVM IR, object) and its diagnostics go to
    unnamed files the helper opened and handed over as stdout/stderr, bounded by RLIMIT_FSIZE.
    So nothing is chowned, root never reads a path clang could write, and the helper needs no
    CAP_CHOWN/CAP_DAC_OVERRIDE. Three boxed runs: the preprocessor's dependency list (what
    files it read, ``#embed`` included), the front end alone to LLVM IR (what inline assembly
    it saw), then the object.
    """
    text = check_source(source)
    clang = find_clang()
    uid, gid = sandbox_ids()
    netns = needs_netns()
    with tempfile.TemporaryDirectory(prefix="schedcp-cc-") as d:
        root = Path(d)
        root.chmod(0o755)
        _copy_headers(root / "include", include_dirs, extra_headers)
        (root / SOURCE).write_text(text)
        (root / SOURCE).chmod(0o644)
        # the sandbox path must not leak into the object: same source, same artifact hash
        flags = ["-target", "bpf", "-O2", "-g", "-Wall", "-D__TARGET_ARCH_x86", "-nostdinc",
                 "-fno-crash-diagnostics", f"-ffile-prefix-map={root}=/schedcp",
                 "-I", "include", "-I", "include/bpf"]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "TMPDIR": str(root), "HOME": str(root)}

        def clang_run(*args: str) -> tuple[int, bytes, str]:
            """(exit code, stdout, scrubbed stderr) of one boxed clang run."""
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                try:
                    r = subprocess.run([clang, *flags, *args], cwd=root, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=err, timeout=WALL_SECONDS, env=env,
                                       preexec_fn=_sandbox(uid, gid, netns))
                except subprocess.TimeoutExpired:
                    raise CompileError(f"clang took longer than {WALL_SECONDS} s and was killed"
                                       ) from None
                except subprocess.SubprocessError:  # the set-up before exec failed
                    raise sandbox_failed("compile") from None
                data = _read_back(out, MAX_OBJECT_BYTES + 1)
                log = _read_back(err, MAX_LOG_BYTES).decode(errors="replace")
            return r.returncode, data, scrub(log.replace(str(root) + "/", ""))

        # pass 1, the preprocessor: the files it read, written even when it fails
        rc, deps, log = clang_run("-M", SOURCE)
        if bad := _outside(root, _deps(deps.decode(errors="replace"))):
            raise CompileError(f"the source reads {len(bad)} file(s) outside the allowed "
                               "headers (#include/#embed); only "
                               f"{', '.join(sorted(ALLOWED_INCLUDES))}")
        if rc != 0:
            raise CompileError(_first_error(log), log)
        if not deps.strip():
            raise CompileError("clang wrote no dependency list", log)
        # pass 2, the front end only (no optimisation, no code generation): the inline
        # assembly it saw (LLVM IR)
        rc, ir, log = clang_run("-S", "-emit-llvm", "-g0", "-Xclang", "-disable-llvm-passes",
                                SOURCE, "-o", "-")
        if rc != 0:
            raise CompileError(_first_error(log), log)
        if found := _foreign_asm(ir.decode(errors="replace")):
            raise CompileError(f"inline assembly is not allowed ({len(found)} statement(s); "
                               "only empty compiler barriers)")
        # pass 3: the object, from the same source and headers
        rc, data, log = clang_run("-c", SOURCE, "-o", "-")
        if rc != 0:
            raise CompileError(_first_error(log), log)
        if not data or len(data) > MAX_OBJECT_BYTES:
            raise CompileError("compiler output missing or over the size limit", log)
        return CompiledObject(data, log)


def _first_error(log: str) -> str:
    first = next((ln for ln in log.splitlines() if "error:" in ln), log.strip()[:200])
    return f"compile failed: {first}"
