"""The whole-system test machine's root: Debian 12 with systemd, dbus, polkitd, logind and two
users, built from the packaging test's cached layers (see tests/packaging/debroot.py).

Layers (tarballs in debroot's cache folder, downloaded .debs in its apt archive folder):
1. ``bookworm-minbase.tar`` — debroot's debootstrap layer;
2. ``bookworm-deps-<key>.tar`` — debroot's layer with exactly what our packages declare in
   Depends, installed (so in the machine ``apt install ./…deb`` needs no network);
3. ``bookworm-system-<key>.tar`` — this module's: systemd as init, udev, logind (libpam-systemd),
   polkitd, sudo; a normal user ``tester`` (uid 1500) auto-logged-in on tty1, an administrator
   ``admin`` (uid 1501, group sudo, password ``ADMIN_PASSWORD``) polkit's auth_admin can ask
   for; the init shim below. Keyed by layer 2's key and everything written here.
The machine boots from an extracted copy of layer 3 (``system-<key>.d``, never modified after
extraction) shared read-only over 9p; see machine.py for why.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.packaging.debroot import (
    CACHE,
    SUITE,
    RootError,
    _load,
    _run,
    _save,
    deps_of,
    prepared_root,
)

TESTER_UID, ADMIN_UID = 1500, 1501
ADMIN_PASSWORD = "admin-pw-7Qx"  # a throwaway machine's; polkit's text agent answers with it
SHARE_TAG, SHARE_DIR = "systest", "/mnt/systest"  # the host's per-test folder, read-write
ROOT_TAG = "sysroot"
PACKAGES = ("systemd-sysv", "udev", "dbus", "polkitd", "libpam-systemd", "sudo", "procps",
            "python3", "util-linux", "less")

# PID 1 for a moment: the kernel mounted the cached root read-only over 9p. Build a writable
# root (that tree as the lower layer, tmpfs as the upper), mark the machine as a SchedCP
# micro-VM (GUEST_MARK: trials run in this kernel, never in a VM inside this TCG guest), mount
# the test's share, then hand over to systemd. Everything written lives in guest RAM.
INIT_SHIM = f"""#!/bin/sh
set -e
mount -t proc proc /proc
mount -t tmpfs -o mode=0755 tmpfs /.overlay
mkdir -p /.overlay/lower /.overlay/upper /.overlay/work /.overlay/root
mount --bind / /.overlay/lower  # the kernel's 9p root (a virtio channel mounts only once)
mount -t overlay overlay \\
    -o lowerdir=/.overlay/lower,upperdir=/.overlay/upper,workdir=/.overlay/work /.overlay/root
R=/.overlay/root
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $R/run
mkdir -p $R/run/schedcp
: > $R/run/schedcp/micro-vm
mkdir -p $R{SHARE_DIR}
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 {SHARE_TAG} $R{SHARE_DIR}
umount /proc
exec switch_root $R /lib/systemd/systemd "$@"
"""

# ~tester/.bash_profile: the autologin shell on tty1 runs the test's session script once
PROFILE = f"""[ -f ~/.profile ] && . ~/.profile
if [ "$(tty)" = /dev/tty1 ] && [ -r {SHARE_DIR}/session.sh ] && [ ! -e /run/user/$UID/ran ]; then
    : > /run/user/$UID/ran
    bash {SHARE_DIR}/session.sh >{SHARE_DIR}/session.log 2>&1
    echo $? > {SHARE_DIR}/session.exit
fi
"""

# the session starts once the administrator (systest-root) has installed the packages
AUTOLOGIN = """[Unit]
After=systest-root.service

[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin tester --noclear %I $TERM
"""

# The test's administrator: root.sh from the test's folder installs the packages, signals
# ready, then serves the session's root-only requests (restart or kill the helper, the journal)
ROOT_UNIT = f"""[Unit]
Description=System test: the administrator (install, then root-only requests)
ConditionPathExists={SHARE_DIR}/root.sh
After=local-fs.target dbus.service
Before=systemd-user-sessions.service

[Service]
Type=notify
NotifyAccess=all
TimeoutStartSec=30min
ExecStart=/bin/bash {SHARE_DIR}/root.sh

[Install]
WantedBy=multi-user.target
"""

# What the boot does not need, to keep a TCG boot short (each unit costs seconds there)
MASKED = ("apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
          "e2scrub_all.timer", "fstrim.timer", "systemd-timesyncd.service",
          "serial-getty@ttyS0.service", "systemd-networkd-wait-online.service",
          "systemd-pstore.service", "man-db.timer", "getty@tty2.service",
          "systemd-firstboot.service")


def _configure_script() -> str:
    masks = " ".join(MASKED)
    return f"""
rm -f /usr/sbin/policy-rc.d  # the machine starts services like any installed system
apt-get install -y -q --no-install-recommends {" ".join(PACKAGES)}
id tester >/dev/null 2>&1 || useradd --create-home --uid {TESTER_UID} --user-group \\
    --shell /bin/bash tester
id admin >/dev/null 2>&1 || useradd --create-home --uid {ADMIN_UID} --user-group \\
    --shell /bin/bash --groups sudo admin
echo 'admin:{ADMIN_PASSWORD}' | chpasswd
echo testbox > /etc/hostname
printf '127.0.0.1 localhost\\n127.0.1.1 testbox\\n' > /etc/hosts
mkdir -p /etc/systemd/system/getty@tty1.service.d /.overlay
for u in {masks}; do ln -sf /dev/null /etc/systemd/system/$u; done
ln -sf /lib/systemd/system/multi-user.target /etc/systemd/system/default.target
rm -f /etc/machine-id && systemd-machine-id-setup  # a fixed id: no first-boot logic
ln -sf /etc/systemd/system/systest-root.service \
    /etc/systemd/system/multi-user.target.wants/systest-root.service
"""


def _files() -> dict[str, tuple[str, int]]:
    return {
        "usr/local/sbin/systest-init": (INIT_SHIM, 0o755),
        "home/tester/.bash_profile": (PROFILE, 0o644),
        "etc/systemd/system/getty@tty1.service.d/autologin.conf": (AUTOLOGIN, 0o644),
        "etc/systemd/system/systest-root.service": (ROOT_UNIT, 0o644),
    }


def deps_key(debs: list[Path]) -> str:
    """debroot's layer-2 key (the same formula as ``prepared_root``)."""
    return hashlib.sha256(deps_of(debs).encode()).hexdigest()[:16]


def layer_key(deps: str) -> str:
    h = hashlib.sha256(deps.encode())
    h.update(repr(PACKAGES).encode() + _configure_script().encode())
    for rel, (text, mode) in sorted(_files().items()):
        h.update(f"{rel}:{mode}:{text}".encode())
    return h.hexdigest()[:16]


def system_root(debs: list[Path], work: Path) -> Path:
    """The extracted layer-3 tree for ``debs`` (built and cached on first use); read-only."""
    deps = deps_key(debs)
    if not (CACHE / f"{SUITE}-deps-{deps}.tar").exists():
        shutil.rmtree(prepared_root(debs, work).path)  # builds and caches layer 2
    return system_root_on(deps, work)


def system_root_on(deps: str, work: Path) -> Path:
    """Layer 3 on the cached layer 2 ``bookworm-deps-<deps>.tar``, extracted."""
    key = layer_key(deps)
    tree = CACHE / f"{SUITE}-system-{key}.d"
    if tree.is_dir():
        return tree
    tar = CACHE / f"{SUITE}-system-{key}.tar"
    if not tar.exists():
        root = _load(CACHE / f"{SUITE}-deps-{deps}.tar", work / "sysroot")
        try:
            root.sh(_configure_script(), timeout=1500)
            for rel, (text, mode) in _files().items():
                p = root.path / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
                p.chmod(mode)
            home = "/home/tester"  # not a host path: in the root
            root.sh(f"chown {TESTER_UID}:{TESTER_UID} {home}/.bash_profile")
            (root.path / "etc" / "resolv.conf").unlink(missing_ok=True)
            _save(root.path, tar)
        finally:
            shutil.rmtree(root.path, ignore_errors=True)
        for old in CACHE.glob(f"{SUITE}-system-*"):  # one system layer is enough
            if old.name not in (tar.name, tree.name):
                _remove(old)
    tmp = CACHE / f"{tree.name}.tmp"
    _remove(tmp)
    tmp.mkdir()
    _run(["tar", "-C", str(tmp), "--numeric-owner", "-xpf", str(tar)], 900)
    tmp.rename(tree)
    return tree


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p)
    elif p.exists():
        p.unlink()


__all__ = ["ADMIN_PASSWORD", "ROOT_TAG", "SHARE_DIR", "SHARE_TAG", "RootError", "system_root"]
