""""What is missing": why this machine cannot switch schedulers, in words a non-expert can act
on. Shared by the tray's "What is missing" box, notifications and the CLI, so they say the same.

The kernel facts are read, not guessed: the running release (``uname -r``) and, when the
kernel publishes its build configuration (/proc/config.gz or /boot/config-RELEASE), whether
CONFIG_SCHED_CLASS_EXT is in it."""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

FIRST_RELEASE = (6, 12)  # the first mainline kernel with sched_ext
CHECK_COMMAND = ("ls /sys/kernel/sched_ext  (present only on a kernel with sched_ext), or "
                 "grep SCHED_CLASS_EXT /boot/config-$(uname -r)")
# distribution kernels built with CONFIG_SCHED_CLASS_EXT (as of their 2025 releases)
KERNELS_WITH_IT = "Arch Linux, CachyOS, Fedora 42 and Ubuntu 25.04 or newer"
DEMO = ("To see SchedCP work anyway, `schedcp demo` runs the whole loop in a small virtual "
        "machine with a sched_ext kernel (no root needed).")
HELPER_INSTALL = "sudo apt install schedcp-helper"


@dataclass(frozen=True)
class KernelFacts:
    release: str
    version: tuple[int, int] | None  # (major, minor) parsed from the release
    config: bool | None  # CONFIG_SCHED_CLASS_EXT built in; None when no config is readable
    config_path: str = ""

    @property
    def new_enough(self) -> bool | None:
        return None if self.version is None else self.version >= FIRST_RELEASE


def _version(release: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _read_config(release: str, roots: tuple[Path, ...]) -> tuple[bool | None, str]:
    for path in roots:
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode(
                "utf-8", "replace")
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        on = re.search(r"^CONFIG_SCHED_CLASS_EXT=y", text, re.M) is not None
        return on, str(path)
    return None, ""


def kernel_facts(release: str | None = None,
                 config_paths: tuple[Path, ...] | None = None) -> KernelFacts:
    release = release or os.uname().release
    paths = config_paths if config_paths is not None else (
        Path("/proc/config.gz"), Path(f"/boot/config-{release}"))
    config, where = _read_config(release, paths)
    return KernelFacts(release, _version(release), config, where)


def no_sched_ext(facts: KernelFacts | None = None) -> str:
    """The full explanation for a kernel without sched_ext (several sentences; the first, up to
    ", so", is the headline the tray's menu shows)."""
    f = facts or kernel_facts()
    head = (f"No sched_ext in this kernel (Linux {f.release}), so SchedCP cannot switch CPU "
            "schedulers here.")
    if f.new_enough is False:
        why = (f"This kernel is older than {FIRST_RELEASE[0]}.{FIRST_RELEASE[1]}, the first "
               "version with sched_ext.")
    elif f.config is False:
        why = ("The kernel is new enough, but it was built without CONFIG_SCHED_CLASS_EXT "
               f"(its build configuration, {f.config_path}, says so).")
    else:
        why = "Most likely it was built without CONFIG_SCHED_CLASS_EXT."
    return (f"{head} {why} Check with: {CHECK_COMMAND}. Kernels that have it: "
            f"{KERNELS_WITH_IT}; or a kernel you build with CONFIG_SCHED_CLASS_EXT=y. "
            f"Analyzing apps still works here. {DEMO}")


def no_sched_ext_short(facts: KernelFacts | None = None) -> str:
    """One line for the CLI: the running release and the one reason."""
    f = facts or kernel_facts()
    if f.new_enough is False:
        why = (f"older than {FIRST_RELEASE[0]}.{FIRST_RELEASE[1]}, the first with sched_ext "
               "(it needs a kernel built with CONFIG_SCHED_CLASS_EXT)")
    elif f.config is False:
        why = "new enough, but built without CONFIG_SCHED_CLASS_EXT"
    else:
        why = "no sched_ext (most likely built without CONFIG_SCHED_CLASS_EXT)"
    return (f"this kernel (Linux {f.release}) cannot switch schedulers: {why}; "
            "`schedcp demo` shows SchedCP working in a sched_ext micro-VM")


def no_helper(detail: str = "") -> str:
    return ("The SchedCP helper is not installed or not running, so schedulers cannot be "
            f"switched. Install it with: {HELPER_INSTALL} (it starts by itself when needed). "
            "Analyzing apps still works." + (f" ({detail})" if detail else ""))
