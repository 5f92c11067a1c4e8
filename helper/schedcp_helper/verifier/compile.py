"""Stage (a): input checks and a sandboxed ``clang -target bpf``.

Source text may come from an AI or a user: the helper treats it as hostile. Before clang sees it
the text must be small, plain UTF-8, include only the BPF headers we ship, and use no inline
assembly or file-probing directives. clang then runs as ``nobody`` in a private folder holding
only copies of those headers, without network, under CPU, memory, file-size and wall-time
limits, so a crafted source can neither read host files into an error message nor hog the host.
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

MAX_SOURCE_BYTES = 128 * 1024
MAX_OBJECT_BYTES = 16 * 1024 * 1024
CPU_SECONDS = 60
WALL_SECONDS = 90
MEMORY_BYTES = 2 * 1024**3
ALLOWED_INCLUDES = frozenset({
    "schedcp.bpf.h", "vmlinux.h", "bpf_helpers.h", "bpf_tracing.h", "bpf_core_read.h",
    "bpf/bpf_helpers.h", "bpf/bpf_tracing.h", "bpf/bpf_core_read.h",
})
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
CLANG_CANDIDATES = ("clang-19", "clang-18", "clang-17", "clang-16", "clang")
CLONE_NEWNET = 0x40000000


class InputError(ValueError):
    """The source was refused before compiling; the message says why."""


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


def _sandbox(uid: int | None, gid: int | None):
    def setup() -> None:  # runs in the child before exec
        libc = ctypes.CDLL(None, use_errno=True)
        if os.geteuid() == 0:
            libc.unshare(CLONE_NEWNET)  # no network: a fresh, empty namespace
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


def compile_source(source: bytes, include_dirs: list[Path], extra_headers: list[Path] = ()
                   ) -> CompiledObject:
    """Check and compile ``source`` in the sandbox; headers are copied in, nothing else is seen."""
    text = check_source(source)
    clang = find_clang()
    uid = gid = None
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
    with tempfile.TemporaryDirectory(prefix="schedcp-cc-") as d:
        root = Path(d)
        inc = root / "include"
        for src in include_dirs:
            shutil.copytree(src, inc, dirs_exist_ok=True, symlinks=False)
        for header in extra_headers:
            shutil.copy(header, inc / header.name)
        (root / "sched.bpf.c").write_text(text)
        if uid is not None:
            for p in [root, *root.rglob("*")]:
                os.chown(p, uid, gid)
        # the sandbox path must not leak into the object: same source, same artifact hash
        argv = [clang, "-target", "bpf", "-O2", "-g", "-Wall", "-D__TARGET_ARCH_x86",
                f"-ffile-prefix-map={root}=/schedcp",
                "-I", "include", "-I", "include/bpf", "-c", "sched.bpf.c", "-o", "sched.bpf.o"]
        try:
            r = subprocess.run(argv, cwd=root, capture_output=True, text=True,
                               timeout=WALL_SECONDS, env={"PATH": "/usr/bin:/bin", "LANG": "C"},
                               preexec_fn=_sandbox(uid, gid))
        except subprocess.TimeoutExpired:
            raise CompileError(f"clang took longer than {WALL_SECONDS} s and was killed") from None
        log = r.stderr.replace(str(root) + "/", "")
        if r.returncode != 0:
            first = next((ln for ln in log.splitlines() if "error:" in ln), log.strip()[:200])
            raise CompileError(f"compile failed: {first}", log)
        obj = root / "sched.bpf.o"
        if not obj.is_file() or obj.stat().st_size >= MAX_OBJECT_BYTES:
            raise CompileError("compiler output missing or over the size limit", log)
        return CompiledObject(obj.read_bytes(), log)
