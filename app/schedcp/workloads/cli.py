"""One catalogue workload as a command, so anything that runs commands (``schedcp optimize --
CMD``, a shell, a benchmark) can run it:

    python -m schedcp.workloads list
    python -m schedcp.workloads run NAME [--cpus N] [--seconds S] [--workdir DIR]
           [--unit-scale X] [--source DIR] [--probe PATH] [--jobs-per-cpu J] [--lib bpf|subcmd]
           [--prepare]

``run`` runs NAME once and prints its parsed metrics as one JSON line. When it cannot, it says
why on stderr, prints ``{"status":"failed",...}`` on stdout and exits non-zero: 3 when a
program is missing (the message names the Debian package), 1 when the program failed or printed
nothing parseable, 2 for a bad command line. A batch's jobs are the command's own children in
birth order (what ``optimize``'s runtime hints key on); ``--prepare`` only writes its inputs
into ``--workdir``, so the runs after it fork nothing but the jobs. Stdlib only: it runs
inside the micro-VM too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import BadOutput, ToolMissing, Workload, catalogue, run

EXIT_FAILED, EXIT_USAGE, EXIT_MISSING = 1, 2, 3


class Usage(Exception):
    """An option that does not fit the workload."""


def _configured(w: Workload, args: argparse.Namespace) -> Workload:
    """The catalogue entry with this command line's sizes and paths."""
    changes: dict = {}
    if w.kind == "batch" and args.unit_scale is not None:
        changes["unit_scale"] = args.unit_scale
    if w.name == "build":
        if args.source is None:
            from .build import source_tree

            args.source = str(source_tree())
        changes["source"] = args.source
        if args.jobs_per_cpu is not None:
            changes["jobs_per_cpu"] = args.jobs_per_cpu
        if args.lib is not None:
            changes["lib"] = args.lib
    if w.name == "frames":
        if args.probe is None:  # built on demand (needs the helper package and a compiler)
            from schedcp_common.workload import probe_binary

            args.probe = str(probe_binary())
        changes["probe"] = args.probe
    return dataclasses.replace(w, **changes) if changes else w


def _run_once(w: Workload, args: argparse.Namespace, workdir: Path) -> dict:
    cpus = args.cpus or len(os.sched_getaffinity(0))
    if args.prepare:
        if w.kind != "batch":
            raise Usage(f"--prepare is for batches; {w.name} has no inputs to write")
        w.require()
        workdir.mkdir(parents=True, exist_ok=True)
        w.prepare(workdir)  # type: ignore[attr-defined]
        return {"prepared": str(workdir)}
    if w.kind == "batch":
        return w.run_batch(cpus, workdir, timeout=args.timeout)  # type: ignore[attr-defined]
    if w.name == "build":  # every run builds from scratch, also in a kept --workdir
        shutil.rmtree(workdir / "out", ignore_errors=True)
    res = run(w, cpus, args.seconds, workdir, timeout=args.timeout)
    if w.name == "build" and res.get("complete") != 1:
        archive = w.archive  # type: ignore[attr-defined]
        raise BadOutput(f"build: make ended without producing {archive} ({res})")
    return res


def _fail(name: str, code: int, why: str) -> int:
    # compact, as the probe prints it: one --fail-pattern '"status":"failed"' matches both
    print(json.dumps({"status": "failed", "workload": name, "error": why},
                     separators=(",", ":")), flush=True)
    print(f"schedcp.workloads: {name}: {why}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m schedcp.workloads", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the catalogue: name, kind and what it measures")
    r = sub.add_parser("run", help="run one workload once; its metrics as JSON")
    r.add_argument("name")
    r.add_argument("--cpus", type=int, help="CPUs to size it for (default: those we may use)")
    r.add_argument("--seconds", type=float, default=2.0,
                   help="length of a latency tool or load (default 2; batches and the build "
                   "run to completion)")
    r.add_argument("--workdir", type=Path, help="kept folder for inputs and outputs (default: "
                   "a temporary one, removed)")
    r.add_argument("--unit-scale", type=float, help="a batch's job length (default 1)")
    r.add_argument("--source", help="the build's extracted kernel tree (default: extract it)")
    r.add_argument("--jobs-per-cpu", type=int, help="the build's make jobs per CPU (default 2)")
    r.add_argument("--lib", choices=("bpf", "subcmd"), help="what the build builds: libbpf "
                   "(default, ~40 files) or libsubcmd (7 files)")
    r.add_argument("--probe", help="the workload probe binary for frames (default: build it)")
    r.add_argument("--timeout", type=float, default=3000, help="seconds (default 3000)")
    r.add_argument("--prepare", action="store_true", help="a batch: only write its inputs")
    args = ap.parse_args(argv)
    ws = catalogue()
    if args.cmd == "list":
        for w in ws.values():
            print(f"{w.name:15} {w.kind:8} {w.measures}")
        return 0
    if args.name not in ws:
        return _fail(args.name, EXIT_USAGE, f"no such workload; known: {', '.join(ws)}")
    tmp = None
    try:
        w = _configured(ws[args.name], args)
        if args.workdir is None:
            tmp = tempfile.mkdtemp(prefix=f"schedcp-{args.name}-")
        res = _run_once(w, args, args.workdir or Path(tmp or "."))
    except ToolMissing as e:
        return _fail(args.name, EXIT_MISSING, str(e))
    except Usage as e:
        return _fail(args.name, EXIT_USAGE, str(e))
    except (BadOutput, RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
        return _fail(args.name, EXIT_FAILED, f"{type(e).__name__}: {e}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res, sort_keys=True), flush=True)
    return 0
