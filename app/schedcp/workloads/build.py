"""Build: ``make -jN`` of libbpf from the kernel tree (tools/lib/bpf of Debian's
linux-source-6.12, already needed for the guest kit): ~40 C files, the paper's kernel-build
role sized to finish in a few minutes in the guest. ``lib="subcmd"`` builds the tree's
libsubcmd instead (7 C files, under a minute in the guest): small enough for the 10+ runs of an
optimization's A/B trials. The source stays read-only (every output goes to ``OUTPUT=``), so
the host's extracted copy serves every guest run."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .base import BadOutput, ToolMissing, Workload

TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
TOP = "linux-source-6.12"
MEMBERS = ("tools", "include/uapi", "arch/x86/include/uapi", "scripts/bpf_doc.py")


def source_tree(cache: Path | None = None) -> Path:
    """The extracted part of the kernel tree the build needs (extracted once, ~1 min)."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "schedcp"
    root = cache / "workloads" / TOP
    if (root / ".complete").exists():
        return root
    if not TARBALL.is_file():
        raise ToolMissing(f"the build workload needs {TARBALL}: apt-get install "
                          "linux-source-6.12 (or `make setup`)")
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xJf", str(TARBALL), "-C", str(root.parent),
                    *(f"{TOP}/{m}" for m in MEMBERS)], check=True)
    (root / ".complete").touch()
    return root


@dataclass(frozen=True)
class Build(Workload):
    source: str = ""  # source_tree(), resolved on the host (the guest sees it read-only)
    jobs_per_cpu: int = 2
    lib: str = "bpf"  # tools/lib/<lib>: "bpf" (libbpf.a) or "subcmd" (libsubcmd.a)

    @property
    def archive(self) -> str:
        return {"bpf": "libbpf.a", "subcmd": "libsubcmd.a"}[self.lib]

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        if not self.source or not Path(self.source, f"tools/lib/{self.lib}/Makefile").is_file():
            raise ToolMissing(f"build: no extracted source at {self.source!r}: pass "
                              "source=str(source_tree())")
        out = workdir / "out"
        out.mkdir(parents=True, exist_ok=True)
        return ["make", "-C", f"{self.source}/tools/lib/{self.lib}",
                f"-j{self.jobs_per_cpu * cpus}", f"OUTPUT={out}/", f"{out}/{self.archive}"]

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        """Files compiled, and whether the archive exists (a build stopped early, as the load
        under a latency measurement is, has ``complete`` 0)."""
        compiled = len(re.findall(r"^\s+CC\s", stdout, re.M))
        if not compiled:
            raise BadOutput(f"make compiled nothing: {stdout[-400:]}")
        return self.parse_stopped(stdout, workdir)

    def parse_stopped(self, stdout: str, workdir: Path) -> dict[str, float]:
        """As a load stopped at the end of a measurement: what it compiled by then (maybe 0)."""
        return {"compiled": len(re.findall(r"^\s+CC\s", stdout, re.M)),
                "complete": float((workdir / "out" / self.archive).is_file())}

    def compiling(self, workdir: Path) -> bool:
        """Past make's start-up (the helper-header generation): objects are appearing."""
        return any((workdir / "out").rglob("*.o"))


WORKLOAD = Build(
    name="build", kind="build",
    measures="wall time of make -j(2 x CPUs) libbpf.a from the kernel's tools/lib/bpf (s)",
    parsed_from="make's 'CC' lines (files compiled) and the archive it must produce",
    tools=(("make", "make"), ("gcc", "gcc"), ("tar", "tar")))
