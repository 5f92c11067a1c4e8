"""Stable workload identity: the same command gets the same history key, whatever the run's
length, the classification of this run or the spelling of the interpreter.

The key is built from what the command *runs*, never from a sampled process:

- the resolved executable (PATH lookup, symlinks followed), an interpreter's version suffix
  dropped (``python3.11`` → ``python``) so an upgrade or another spelling keeps the history;
- for interpreters (python, node, perl, bash, …) the script: its resolved path, ``-m module``,
  or a digest of ``-c`` code;
- the shape of the remaining arguments: option names, and for values only their type (number,
  path, word); the first plain words are kept as sub-commands (``probe batch`` is not
  ``probe latency``), so ``make -j8`` and ``make -j4`` share one history.

Key format: ``goal:name:digest`` — readable name (``python:train.py``), and a digest of the
resolved parts so two different ``run.py`` scripts do not collide.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil

INTERPRETERS = ("python", "pypy", "node", "nodejs", "deno", "bun", "perl", "ruby", "php",
                "lua", "luajit", "bash", "sh", "dash", "zsh", "ksh", "fish", "tclsh", "rscript",
                "julia", "java")
_VERSION = re.compile(r"[\d.]+(-[\w.]+)?$")
_NUM = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?[a-zA-Z%]{0,3}$")
_WORD = re.compile(r"^[A-Za-z][\w-]{0,31}$")
# interpreter options that take a value (the value is not the script)
_OPT_VALUE = {"-W", "-X", "-Q", "-I", "-r", "--require", "-o", "-O", "--import", "-cp",
              "-classpath", "--loader", "-x"}
SUBCOMMANDS = 2  # plain words kept verbatim at the start of the arguments


def resolve_executable(name: str, cwd: str | None = None) -> str:
    """Absolute, symlink-free path of ``name`` (a PATH lookup for bare names); as given when it
    cannot be found."""
    if not name:
        return ""
    if "/" in name:
        path = name if os.path.isabs(name) else os.path.join(cwd or os.getcwd(), name)
    else:
        path = shutil.which(name) or name
    return os.path.realpath(path) if os.path.exists(path) else name


def interpreter(exe: str) -> str | None:
    """``python`` for /usr/bin/python3.11, None for a non-interpreter."""
    base = os.path.basename(exe).lower()
    stem = _VERSION.sub("", base) or base
    for name in INTERPRETERS:
        if stem == name or (name in ("python", "pypy") and stem.startswith(name)):
            return name
    return None


def _script(args: list[str], cwd: str | None) -> tuple[str, str, list[str]]:
    """(readable script name, resolved identity, the script's own arguments)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-m", "-jar") and i + 1 < len(args):
            return f"{a} {args[i + 1]}", f"{a} {args[i + 1]}", args[i + 2:]
        if a in ("-c", "-e", "--eval") and i + 1 < len(args):
            code = hashlib.sha256(args[i + 1].encode()).hexdigest()[:12]
            return f"{a} code", f"{a}:{code}", args[i + 2:]
        if a == "--":
            i += 1
            break
        if a.startswith("-"):
            i += 2 if a in _OPT_VALUE else 1
            continue
        break
    if i >= len(args):
        return "", "", []
    script = args[i]
    path = script if os.path.isabs(script) else os.path.join(cwd or os.getcwd(), script)
    resolved = os.path.realpath(path) if os.path.exists(path) else script
    return os.path.basename(script), resolved, args[i + 1:]


def shape(args: list[str]) -> list[str]:
    """Option names and value types; the first plain words kept as sub-commands."""
    out: list[str] = []
    words = 0
    for a in args:
        if a.startswith("-") and not _NUM.match(a):
            name = a.split("=", 1)[0]
            if not name.startswith("--") and len(name) > 2:
                name = name[:2]  # -j8 → -j
            out.append(name)
        elif _NUM.match(a):
            out.append("N")
        elif _WORD.match(a) and words < SUBCOMMANDS:
            out.append(a)
            words += 1
        elif "/" in a or "." in a:
            out.append("P")
        else:
            out.append("W")
    return out


def identity(argv: list[str], cwd: str | None = None, exe: str = "") -> tuple[str, str]:
    """(readable name, digest) of a command line."""
    if not argv:
        real = resolve_executable(exe, cwd) if exe else ""
        base = os.path.basename(real) or "unknown"
        name = interpreter(real) or base
        return name, hashlib.sha256(real.encode()).hexdigest()[:10]
    real = resolve_executable(argv[0], cwd)
    interp = interpreter(real)
    rest = list(argv[1:])
    parts: list[str]
    if interp is not None:
        script, resolved, rest = _script(rest, cwd)
        name = f"{interp}:{script}" if script else interp
        exe_id = os.path.join(os.path.dirname(real), interp)  # version-free
        parts = [exe_id, resolved, *shape(rest)]
    else:
        name = os.path.basename(real)
        parts = [real, *shape(rest)]
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]
    return name, digest


def workload_key(goal: str, argv: list[str], exe: str = "", kind: str = "",
                 cwd: str | None = None) -> str:
    """The history key. With a command line: ``goal:name:digest`` (no kind: a short run and a
    long one of the same command may be classified differently). Without one, the old
    ``kind:goal:exe`` form, so stores written before stay reachable for such profiles."""
    if not argv:
        return f"{kind}:{goal}:{exe.rsplit('/', 1)[-1]}"
    name, digest = identity(argv, cwd, exe)
    return f"{goal}:{name}:{digest}"


def resolve_argv(argv: list[str], cwd: str | None = None) -> list[str]:
    """The command with its executable (and an interpreter's script) made absolute, so a key
    computed later, elsewhere, is the same."""
    if not argv:
        return []
    out = [resolve_executable(argv[0], cwd), *argv[1:]]
    if interpreter(out[0]) is not None:
        rest = out[1:]
        i = 0
        while i < len(rest):
            a = rest[i]
            if a in ("-m", "-jar", "-c", "-e", "--eval"):
                break
            if a.startswith("-"):
                i += 2 if a in _OPT_VALUE else 1
                continue
            path = a if os.path.isabs(a) else os.path.join(cwd or os.getcwd(), a)
            if os.path.exists(path):
                rest[i] = os.path.realpath(path)
            break
        out = [out[0], *rest]
    return out
