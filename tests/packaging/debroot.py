"""A throwaway Debian 12 root for the package install test, built from cached layers.

Layer 1 is `debootstrap --variant=minbase bookworm` (cold ~2 min); layer 2 adds exactly what the
packages declare in Depends, resolved by apt from deb.debian.org (`apt-get satisfy`). Both are
cached as tarballs under ~/.cache/schedcp/debroot (layer 2 keyed by the Depends text), and
downloaded .debs are kept in an apt archive folder bind-mounted into the root, so a warm run
only unpacks. Every command runs in its own mount + PID namespace (`unshare`): the mounts and
every process started inside (dbus-daemon, the helper, polkitd) vanish when the command ends.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("SCHEDCP_DEBROOT_CACHE",
                            Path.home() / ".cache" / "schedcp" / "debroot"))
# Not files a package owns: runtime, apt's and dpkg's own bookkeeping, logs, the test user's
# home (per-user data is the user's, never a package's).
UNOWNED = ("proc/", "dev/", "sys/", "run/", "tmp/", "var/tmp/", "home/", "var/cache/apt/",
           "var/lib/apt/", "var/lib/dpkg/", "var/log/", "var/cache/debconf/",
           "var/cache/ldconfig/", "etc/ld.so.cache")


class RootError(Exception):
    """The root could not be built or a command in it failed; the message has its output."""


@dataclass
class DebRoot:
    path: Path

    def sh(self, script: str, timeout: float = 600, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with ``sh -e`` chrooted in the root, in fresh mount/PID namespaces."""
        archives = CACHE / "archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        outer = (
            'set -e; r="$1"\n'
            'mount -t proc proc "$r/proc"\n'
            'mount --rbind /dev "$r/dev"\n'
            'mount -t tmpfs tmpfs "$r/run"\n'
            f'mount --bind "{archives}" "$r/var/cache/apt/archives"\n'
            'exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root '
            'LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/sh -ec "$2"\n'
        )
        r = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--kill-child",
                            "sh", "-c", outer, "sh", str(self.path), script],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RootError(f"in-root command failed ({r.returncode}):\n{script}\n--- stdout\n"
                            f"{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}")
        return r

    def files(self) -> set[str]:
        """Every path in the root that a package could own (relative, dirs end in '/')."""
        out: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(self.path):
            rel = os.path.relpath(dirpath, self.path)
            rel = "" if rel == "." else rel + "/"
            dirnames[:] = [d for d in dirnames if not (rel + d + "/").startswith(UNOWNED)]
            out.update(rel + d + "/" for d in dirnames)
            out.update(rel + f for f in filenames if not (rel + f).startswith(UNOWNED))
        return out


def _run(argv: list[str], timeout: float) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RootError(f"{' '.join(argv)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def _save(root: Path, tar: Path) -> None:
    tmp = tar.with_suffix(".tmp")
    _run(["tar", "-C", str(root), "--numeric-owner", "--exclude=./proc/*", "--exclude=./dev/*",
          "--exclude=./var/cache/apt/archives/*.deb", "-cf", str(tmp), "."], 600)
    tmp.rename(tar)


def _load(tar: Path, dest: Path) -> DebRoot:
    dest.mkdir(parents=True)
    _run(["tar", "-C", str(dest), "--numeric-owner", "-xpf", str(tar)], 600)
    shutil.copy2("/etc/resolv.conf", dest / "etc" / "resolv.conf")
    return DebRoot(dest)


def base_layer(work: Path) -> Path:
    """debootstrap minbase, plus a policy-rc.d so no package starts services in the root."""
    tar = CACHE / f"{SUITE}-minbase.tar"
    if tar.exists():
        return tar
    (CACHE / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    root = work / "debootstrap"
    _run(["debootstrap", "--variant=minbase", f"--cache-dir={CACHE / 'archives'}", SUITE,
          str(root), MIRROR], 1200)
    rc = root / "usr" / "sbin" / "policy-rc.d"
    rc.write_text("#!/bin/sh\nexit 101\n")
    rc.chmod(0o755)
    _save(root, tar)
    shutil.rmtree(root)
    return tar


def deps_of(debs: list[Path]) -> str:
    """The Depends of ``debs`` as one apt relation string, minus the packages among ``debs``."""
    ours = {subprocess.run(["dpkg-deb", "-f", str(d), "Package"], capture_output=True,
                           text=True, check=True).stdout.strip() for d in debs}
    rels = []
    for d in debs:
        text = subprocess.run(["dpkg-deb", "-f", str(d), "Depends"], capture_output=True,
                              text=True, check=True).stdout
        rels += [r.strip() for r in text.split(",")
                 if r.strip() and r.split()[0].split(":")[0] not in ours]
    return ", ".join(sorted(set(rels)))


def prepared_root(debs: list[Path], work: Path) -> DebRoot:
    """A fresh root at ``work/root`` with the packages' dependencies installed, not them."""
    deps = deps_of(debs)
    key = hashlib.sha256(deps.encode()).hexdigest()[:16]
    tar = CACHE / f"{SUITE}-deps-{key}.tar"
    if not tar.exists():
        root = _load(base_layer(work), work / "deps")
        root.sh("apt-get update -q", timeout=600)
        root.sh(f"apt-get satisfy -y -q --no-install-recommends '{deps}'", timeout=1500)
        _save(root.path, tar)
        shutil.rmtree(root.path)
        for old in CACHE.glob(f"{SUITE}-deps-*.tar"):  # one dependency layer is enough
            if old != tar:
                old.unlink()
    return _load(tar, work / "root")


def debs_in(folder: Path) -> list[Path]:
    """The newest schedcp and schedcp-helper .deb in ``folder`` (``make deb`` output)."""
    found = []
    for name in ("schedcp-helper_*_all.deb", "schedcp_*_amd64.deb"):
        cands = sorted(folder.glob(name), key=lambda p: p.stat().st_mtime)
        if cands:
            found.append(cands[-1])
    return found



def build_debs(out: Path) -> list[Path]:
    """The two packages: from ``$SCHEDCP_DEB_DIR`` (``make deb`` output) if set, else built
    into ``out`` by packaging/build-deb.sh."""
    given = os.environ.get("SCHEDCP_DEB_DIR")
    if given:
        return debs_in(Path(given))
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([str(repo / "packaging" / "build-deb.sh"), str(out)],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RootError(f"build-deb.sh failed:\n{r.stderr[-5000:]}")
    return debs_in(out)
