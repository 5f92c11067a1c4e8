"""Boot the system test's Debian root as its own init in a qemu TCG guest on the kit's kernel.

Why a root over 9p with an overlay rather than a disk image: the kit's kernel has no EXT4 (a
changed Kconfig no longer matches the shared prebuilt kernel and costs a ~25 min build), but
it has 9P, OVERLAY_FS and TMPFS. The cached, extracted root (sysroot.py) is shared read-only;
the init shim in it puts a tmpfs upper over it and exec's systemd, so nothing is copied per
test (the root is ~1 GB), the cache is never written by a guest, and everything the machine
writes vanishes with qemu. The cost: a guest reboot starts from the cached root again, so
whatever the helper kept does not survive a reboot of *this* machine (it does on a disk).

One host folder per test is shared read-write at /mnt/systest: what goes in (the .debs, the
kit, the scripts, the administrator's password) and what comes out (logs). Everything read back
is the guest's and is treated as hostile: regular files only, opened with O_NOFOLLOW, bounded
in size, parsed strictly.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from schedcp_common.vm.guest import SANDBOX, mttcg_safe
from schedcp_common.vm.kit import Kit

from .sysroot import ROOT_TAG, SHARE_TAG

QEMU = "qemu-system-x86_64"
MAX_READ = 8 << 20
SECTION = re.compile(r"^==== ([a-z0-9-]+)$", re.M)


def cmdline() -> str:
    return ("console=ttyS0 loglevel=4 panic=-1 oops=panic "
            f"root={ROOT_TAG} rootfstype=9p "
            "rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose ro "
            "init=/usr/local/sbin/systest-init systemd.show_status=1 "
            "systemd.journald.forward_to_console=1 systemd.journald.max_level_console=notice")


def qemu_argv(kit: Kit, tree: Path, share: Path, cpus: int, memory: str) -> list[str]:
    accel = "tcg,thread=" + ("multi" if mttcg_safe(kit.config) else "single")
    return [
        QEMU, "-name", "systest", "-accel", accel, "-machine", "q35", "-cpu", "max",
        "-smp", str(cpus), "-m", memory, "-kernel", str(kit.bzimage), "-append", cmdline(),
        "-fsdev", f"local,id={ROOT_TAG},path={tree},security_model=none,readonly=on,"
        "multidevs=remap",
        "-device", f"virtio-9p-pci,fsdev={ROOT_TAG},mount_tag={ROOT_TAG}",
        "-fsdev", f"local,id={SHARE_TAG},path={share},security_model=none",
        "-device", f"virtio-9p-pci,fsdev={SHARE_TAG},mount_tag={SHARE_TAG}",
        "-nic", "none", "-display", "none", "-vga", "none", "-monitor", "none",
        "-serial", "stdio", "-no-reboot", "-sandbox", SANDBOX,
    ]


def read_guest_file(path: Path, limit: int = MAX_READ) -> str:
    """A file the guest wrote: a regular file (no symlink, FIFO or device), at most ``limit``
    bytes read, decoded with replacement; "" when absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path.name} written by the guest is not a regular file")
        data = os.read(fd, limit)
    finally:
        os.close(fd)
    return data.decode(errors="replace").replace("\x00", "")


def sections(text: str) -> dict[str, str]:
    """``==== name`` blocks; a name seen twice is refused (a guest could try to shadow one)."""
    parts = SECTION.split(text)
    out: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in out:
            raise ValueError(f"section {name!r} appears twice")
        out[name] = body
    return out


def exit_status(body: str) -> int | None:
    """The ``rc=N`` a section ends with (its last such line), None if it has none."""
    found = re.findall(r"^rc=(\d{1,3})$", body, re.M)
    return int(found[-1]) if found else None


@dataclass
class Machine:
    kit: Kit
    tree: Path
    share: Path
    cpus: int = 2
    memory: str = "3G"
    proc: subprocess.Popen | None = None
    started: float = 0.0
    serial: Path = field(init=False)

    def __post_init__(self) -> None:
        self.serial = self.share.parent / "serial.log"

    def start(self) -> None:
        argv = qemu_argv(self.kit, self.tree, self.share, self.cpus, self.memory)
        self.started = time.monotonic()
        with self.serial.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, process_group=0)

    def wait_for(self, name: str, timeout: float) -> bool:
        """Until the guest creates ``share/name`` (True), qemu exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.share / name).exists():
                return True
            if self.proc is None or self.proc.poll() is not None:
                return (self.share / name).exists()
            time.sleep(1)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def serial_tail(self, n: int = 6000) -> str:
        return read_guest_file(self.serial)[-n:] if self.serial.is_file() else ""


def prepare_share(share: Path, debs: list[Path], kit: Kit, files: dict[str, Path | str],
                  admin_password: str) -> None:
    """The test's folder: .debs, the kit, the scripts, the password; writable by the guest."""
    (share / "debs").mkdir(parents=True)
    for d in debs:
        shutil.copy2(d, share / "debs" / d.name)
    shutil.copytree(kit.root, share / "kit", symlinks=True)
    (share / "kit-release").write_text(kit.root.name)
    (share / "files").mkdir()
    for name, src in files.items():
        dest = share / "files" / name
        if isinstance(src, Path):
            shutil.copy2(src, dest)
        else:
            dest.write_text(src)
    (share / "files" / "admin-password").write_text(admin_password + "\n")
    (share / "req").mkdir()
    os.chmod(share / "req", 0o1777)
    os.chmod(share, 0o1777)
