"""Run a command under the helper unit's restrictions, read from the unit file itself.

The installed helper runs as root under ``packaging/systemd/schedcp-helper.service``. This host
has no systemd as PID 1 (``systemd-run`` exists but has no manager to talk to), so the tests
here reproduce the unit's settings that decide whether the helper's own operations work, each
taken from the unit file so that the test follows the unit when it changes:

- ``CapabilityBoundingSet=`` and ``NoNewPrivileges=``: ``setpriv --bounding-set`` (root keeps
  only these capabilities: without CAP_DAC_OVERRIDE root cannot enter a folder it does not own);
- ``ProtectSystem=strict``: every mount bind-remounted read-only, except the unit's
  ``StateDirectory=``/``CacheDirectory=`` (fresh, empty, writable) and ``ReadWritePaths=``;
- ``ProtectHome=yes``: /root, /home and /run/user replaced by empty mode-000 folders;
- ``PrivateTmp=yes``: a fresh /tmp and /var/tmp; ``PrivateNetwork=yes``: a new network namespace;
- ``RestrictNamespaces=yes``: a seccomp filter refusing unshare(2)/setns(2) and clone(2) with
  namespace flags (EPERM), clone3 (ENOSYS), as systemd installs it;
- ``Environment=`` and ``UMask=``.

Not reproduced: ``SystemCallFilter=``, ``RestrictAddressFamilies=``, device and kernel-tunable
protections (they do not touch the paths exercised here); the whole unit under a real systemd is
covered by the system test machine in ``tests/system/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT_FILE = ROOT / "packaging" / "systemd" / "schedcp-helper.service"


@dataclass
class Unit:
    """The [Service] settings of a unit file; repeated keys accumulate, an empty one resets."""

    settings: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = UNIT_FILE) -> Unit:
        unit, section = cls(), ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section != "Service":
                continue
            key, _, value = line.partition("=")
            values = unit.settings.setdefault(key.strip(), [])
            if value.strip():
                values.append(value.strip())
            else:
                values.clear()
        return unit

    def last(self, key: str, default: str = "") -> str:
        values = self.settings.get(key) or []
        return values[-1] if values else default

    def yes(self, key: str) -> bool:
        return self.last(key, "no").lower() in ("yes", "true", "on", "1")

    def words(self, key: str) -> list[str]:
        return [w for v in self.settings.get(key, []) for w in v.split()]

    @property
    def capabilities(self) -> list[str]:
        caps = self.words("CapabilityBoundingSet")
        assert not any(c.startswith("~") for c in caps), "an inverted bounding set is not handled"
        return [c.lower().removeprefix("cap_") for c in caps]

    @property
    def environment(self) -> dict[str, str]:
        env = {}
        for word in self.words("Environment"):
            key, _, value = word.partition("=")
            env[key] = value
        return env

    def writable_dirs(self) -> list[str]:
        dirs = [f"/var/lib/{d}" for d in self.words("StateDirectory")]
        dirs += [f"/var/cache/{d}" for d in self.words("CacheDirectory")]
        return dirs


# Runs as root inside `unshare --mount [--net]`: sets up the file system the unit would give,
# installs the namespace filter, then execs setpriv with the bounding set. Its argument is JSON.
ENTER = r'''
import ctypes, json, os, subprocess, sys
cfg = json.loads(sys.argv[1])

def sh(*argv):
    subprocess.run(argv, check=True)

sh("mount", "--make-rprivate", "/")
API = ("/proc", "/sys", "/dev", "/run/user")
for parent in ("/var/lib", "/var/cache"):  # fresh StateDirectory=/CacheDirectory= parents
    if any(d.startswith(parent + "/") for d in cfg["writable"]):
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", parent)
for d in cfg["writable"]:
    os.makedirs(d, mode=0o755, exist_ok=True)
    sh("mount", "--bind", d, d)
binds = []
for src, dst in cfg["binds"]:
    os.makedirs(dst, exist_ok=True)
    sh("mount", "--bind", src, dst)
    binds.append(dst)
if cfg["protect_system"] == "strict":
    keep = set(cfg["writable"]) | set(cfg["read_write"])
    mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
    for mp in mounts:
        mp = mp.encode().decode("unicode_escape")
        if mp in keep or any(mp == a or mp.startswith(a + "/") for a in API):
            continue
        subprocess.run(["mount", "-o", "remount,bind,ro", mp], check=False,
                       stderr=subprocess.DEVNULL)
for dst in binds:  # the read-only inputs (e.g. the guest kit)
    sh("mount", "-o", "remount,bind,ro", dst)
if cfg["private_tmp"]:
    for d in ("/tmp", "/var/tmp"):
        sh("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", d)
if cfg["protect_home"]:
    for d in ("/root", "/home", "/run/user"):
        if os.path.isdir(d):
            sh("mount", "-t", "tmpfs", "-o", "mode=000", "tmpfs", d)
if cfg["restrict_namespaces"]:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

    class Cmp(ctypes.Structure):
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                    ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(Cmp)]
    ctx = lib.seccomp_init(0x7FFF0000)  # SCMP_ACT_ALLOW
    EPERM, ENOSYS = 0x00050000 | 1, 0x00050000 | 38  # SCMP_ACT_ERRNO(...)
    nr = lambda name: lib.seccomp_syscall_resolve_name(name.encode())
    assert lib.seccomp_rule_add_array(ctx, EPERM, nr("setns"), 0, None) == 0
    assert lib.seccomp_rule_add_array(ctx, ENOSYS, nr("clone3"), 0, None) == 0
    for flag in (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000, 0x00000080):  # CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET,TIME}
        for call in ("unshare", "clone") if flag != 0x80 else ("unshare",):  # clone: CSIGNAL
            cmp = Cmp(0, 7, flag, flag)  # SCMP_CMP_MASKED_EQ: (arg0 & flag) == flag
            assert lib.seccomp_rule_add_array(ctx, EPERM, nr(call), 1, ctypes.byref(cmp)) == 0
    assert lib.seccomp_load(ctypes.c_void_p(ctx)) == 0
os.umask(cfg["umask"])
os.execvpe(cfg["argv"][0], cfg["argv"], cfg["env"])
'''


def command(argv: list[str], unit: Unit | None = None, binds: dict[Path, str] | None = None,
            env: dict[str, str] | None = None) -> list[str]:
    """The command line running ``argv`` as the unit would run it (``binds``: host folders
    shown read-only at the given paths, e.g. the guest kit at the unit's SCHEDCP_VM_CACHE)."""
    unit = unit or Unit.load()
    caps = unit.capabilities
    setpriv = ["setpriv", "--bounding-set", ",".join(["-all", *(f"+{c}" for c in caps)]),
               "--inh-caps", "-all"]
    if unit.yes("NoNewPrivileges"):
        setpriv.append("--no-new-privs")
    full_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C.UTF-8", **unit.environment, **(env or {})}
    cfg = {
        "writable": unit.writable_dirs(),
        "read_write": unit.words("ReadWritePaths"),
        "binds": [[str(src), dst] for src, dst in (binds or {}).items()],
        "protect_system": unit.last("ProtectSystem", "no"),
        "private_tmp": unit.yes("PrivateTmp"),
        "protect_home": unit.yes("ProtectHome"),
        "restrict_namespaces": unit.yes("RestrictNamespaces"),
        "umask": int(unit.last("UMask", "0022"), 8),
        "env": full_env,
        "argv": [*setpriv, "--", *argv],
    }
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if unit.yes("PrivateNetwork"):
        unshare.append("--net")
    return [*unshare, "--", sys.executable, "-I", "-c", ENTER, json.dumps(cfg)]


def run(argv: list[str], unit: Unit | None = None, binds: dict[Path, str] | None = None,
        env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run it and wait; every process of it lives in its own mount (and network) namespace, so
    nothing it mounts outlives it."""
    return subprocess.run(command(argv, unit, binds, env), capture_output=True, text=True,
                          timeout=timeout, cwd="/")


def usable() -> str:
    """Why this host cannot run the box ("" when it can): it needs root and mount namespaces."""
    if os.geteuid() != 0:
        return "the unit's restrictions need root to reproduce"
    r = subprocess.run(["unshare", "--mount", "--net", "--", "true"], capture_output=True,
                       text=True)
    return "" if r.returncode == 0 else f"no mount/network namespaces here: {r.stderr.strip()}"
