"""The kernel a candidate scheduler is verified for, and how to reach it.

Three cases: inside a SchedCP micro-VM (tests, the demo) the running kernel is the target and
trials run here directly — never nest VMs; on a host without sched_ext the target is the guest
kit's kernel, reached through the micro-VM; on a host with sched_ext the target is the host's
kernel, booted as the micro-VM's guest for the dynamic stage.
"""

from __future__ import annotations

import contextlib
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from schedcp_common.vm import guest
from schedcp_common.vm.kit import Kit, KitError, cache_dir, find_kit

from ..atomic import write_atomic
from ..errors import VerifierUnavailable

FUNC_RE = re.compile(r"^\[\d+\] FUNC '([^']+)'", re.M)
VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")


class TargetError(VerifierUnavailable):
    """No usable target kernel; the message says what is missing."""


def _funcs_from_btf(bpftool: Path, btf: Path) -> frozenset[str]:
    r = subprocess.run([str(bpftool), "btf", "dump", "file", str(btf), "format", "raw"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise TargetError(f"cannot read kernel BTF {btf}: {r.stderr.strip()}")
    return frozenset(FUNC_RE.findall(r.stdout))


@dataclass
class Target:
    release: str
    bpftool: Path
    libbpf: Path | None  # libbpf the trial loads (the kit's 1.5 in the guest); None: system
    kit: Kit | None  # the guest kernel, when the target is reached through the micro-VM
    direct: bool  # trials run in the running kernel (we are the throwaway guest)

    @property
    def trials(self) -> str:
        """Where the kernel-verifier and dynamic stages run: ``in-place`` (this machine is a
        SchedCP micro-VM, see ``guest.in_guest``) or ``micro-vm`` (a guest booted per verify)."""
        return "in-place" if self.direct else "micro-vm"

    @classmethod
    def detect(cls) -> Target:
        kit = None
        with contextlib.suppress(KitError):  # a host with sched_ext needs no kit
            kit = find_kit()
        if kit is None and not guest.in_guest() and not Path("/sys/kernel/sched_ext").is_dir():
            raise TargetError("this kernel lacks sched_ext and no guest kit is available: "
                              "run `schedcp vm-kit --build`")
        bpftool = kit.bpftool if kit else shutil.which("bpftool", path="/usr/sbin:/usr/bin")
        if bpftool is None:
            raise TargetError("bpftool is needed to read BTF: apt-get install bpftool")
        libbpf = kit.libbpf if kit else None
        if guest.in_guest():
            return cls(platform.release(), Path(bpftool), libbpf, None, True)
        if Path("/sys/kernel/sched_ext").is_dir():
            return cls(platform.release(), Path(bpftool), None, None, False)
        if kit is None:
            raise TargetError("this kernel lacks sched_ext and no guest kit is available: "
                              "run `schedcp vm-kit --build`")
        return cls(kit.release, kit.bpftool, libbpf, kit, False)

    def guest_config(self, **kw) -> guest.GuestConfig:
        return guest.kit_config(self.kit, **kw) if self.kit else guest.default_config(**kw)

    @cached_property
    def _functions(self) -> frozenset[str]:
        if self.kit is None:
            return _funcs_from_btf(self.bpftool, VMLINUX_BTF)
        cached = cache_dir() / f"kernel-funcs-{self.release}.txt"
        if not cached.is_file():  # one boot per kit release, then cached
            with tempfile.TemporaryDirectory() as d:
                cfg = self.guest_config(out_dir=Path(d), timeout=120)
                # copy the raw BTF out and parse it here: bpftool under TCG takes minutes
                r = guest.run(f"cat {VMLINUX_BTF} > vmlinux.btf", cfg, lambda b: None)
                if r.returncode != 0:
                    raise TargetError(f"could not read the guest kernel's BTF: {r.message}")
                names = _funcs_from_btf(self.bpftool, Path(d) / "vmlinux.btf")
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cached, "\n".join(sorted(set(names))) + "\n")
        return frozenset(cached.read_text().split())

    def functions(self) -> frozenset[str]:
        return self._functions
