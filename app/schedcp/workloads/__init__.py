"""The workload catalogue: third-party programs the demo, the benchmarks and the tests share.

One module per workload; each exports ``WORKLOAD`` (a ``base.Workload``) saying what it
measures and which part of the program's output becomes numbers. Programs come from Debian
packages (installed by ``make setup``); a missing one raises ``ToolMissing`` naming the package.
Stdlib only: these modules also run inside the micro-VM.
"""

from __future__ import annotations

from importlib import import_module

from .base import BadOutput, Running, ToolMissing, Workload, run, start

MODULES = ("cyclictest", "frames", "hackbench", "perf_pipe", "perf_messaging", "stress_cpu",
           "build", "batch_gzip", "batch_sha256", "batch_sort", "batch_sqlite")


def catalogue() -> dict[str, Workload]:
    """name -> workload, in catalogue order."""
    out = {}
    for mod in MODULES:
        w = import_module(f"{__name__}.{mod}").WORKLOAD
        out[w.name] = w
    return out


__all__ = ["BadOutput", "Running", "ToolMissing", "Workload", "catalogue", "run", "start"]
