"""Real third-party workloads (the catalogue, ``schedcp.workloads``) per scheduler, one boot per
table, rounds interleaved; medians with a 95 % bootstrap interval and n.

Tables:
  latency  each latency tool (cyclictest, hackbench, perf bench sched pipe/messaging) in a
           target cgroup while a load runs (stress-ng CPU hogs, or the libbpf build); the
           load's throughput beside it. ``interactive`` gets the target by cgroup id
           (its ``target_cgid``), never by name.
  batch    4 batches of 39 short + 1 long jobs from real tools; ljf gets each job's expected
           work (its input size x this boot's unit cost from the last default run) by birth
           order, before the jobs pass their gate.
  build    make -j(2 x CPUs) of libbpf.a (or ``--build-lib subcmd``: libsubcmd.a); wall time.

    python bench/real_workloads.py --table latency [--virtual-time] [--cpus N] [-n 3]
           [--seconds 2] [--load stress-cpu|build] [--build-jobs 2] [--variants a,b] [--json]
    python bench/real_workloads.py --table build [--build-lib subcmd] [-n 3] [--variants a,b]

In virtual time (``--virtual-time``) latencies are guest-virtual and repeatable; elsewhere they
are plain-TCG wall times, biased by whatever else the host runs. Exit status: 0 all runs ok,
1 a run failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"
SCX_STATE = "/sys/kernel/sched_ext/state"
CGROUP = Path("/sys/fs/cgroup/schedcp-target")

# variant -> (our object | packaged stand-in binary, hint kind)
VARIANTS: dict[str, tuple[str, str | None]] = {
    "default": ("", None),
    # the kernel default again, placed where it is listed: "default" runs first in every round
    # (it calibrates ljf's hints), so this tells a position effect from a scheduler's
    "default-again": ("", None),
    "fifo": ("fifo", None),
    "vtime": ("vtime", None),
    "ljf": ("ljf", "batch"),
    "interactive": ("interactive", "cgroup"),
    "interactive-6ms": ("interactive", "cgroup"),  # slice_us 6000: longer than a frame's work
    "powersave": ("powersave", None),
    "scx_simple": ("exe:scx_simple", None),
    "scx_qmap": ("exe:scx_qmap", None),
    "scx_central": ("exe:scx_central", None),
}
TUNED = {"interactive-6ms": {"slice_us": 6000}}
LATENCY_TOOLS = ("frames", "cyclictest", "hackbench", "perf-pipe", "perf-messaging")
BATCHES = ("batch-gzip", "batch-sha256", "batch-sort", "batch-sqlite")


# ---------------------------------------------------------------------------------------------
# guest side (stdlib, the loader and the catalogue)


class Attached:
    """The run's scheduler: our object through the loader, or a stand-in binary as a child."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.sched = self.child = None
        if run.get("obj"):
            from schedcp_helper.loader import BpfScheduler

            self.sched = BpfScheduler().open(run["obj"])
            if run.get("tunables"):
                self.sched.set_tunables(run["tunables"])
            self.sched.load()
            self.sched.attach()
        elif run.get("exe"):
            self.child = subprocess.Popen([run["exe"]], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while Path(SCX_STATE).read_text().strip() != "enabled":
                if self.child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{run['exe']} did not enable sched_ext")
                time.sleep(0.05)

    def still_on(self) -> bool:
        return (self.sched is None and self.child is None) or \
            Path(SCX_STATE).read_text().strip() == "enabled"

    def close(self) -> None:
        if self.sched is not None:
            self.sched.close()
        if self.child is not None:
            self.child.terminate()
            try:
                self.child.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()


def _workload(name: str, run: dict[str, Any]):
    import dataclasses

    from schedcp.workloads import catalogue

    w = catalogue()[name]
    if name == "build":
        w = dataclasses.replace(w, source=run["source"], jobs_per_cpu=run.get("build_jobs", 2),
                                lib=run.get("build_lib", "bpf"))
    if name == "frames":
        w = dataclasses.replace(w, probe=run["probe"])
    return w


def _wait(run: dict[str, Any], seconds: float) -> float:
    """A guest-side wait. In virtual time (-icount sleep=off) an idle guest's clock jumps to its
    next timer, so while a process waits on the host (9p paging, a build reading its sources)
    a short timeout expires in no wall time at all: there, only the host's wall-clock limit
    on the guest guards against a hang."""
    return 3600.0 if run.get("virtual_time") else seconds


def _one(run: dict[str, Any], calib: dict[str, float], idx: int) -> dict[str, Any]:
    from schedcp.workloads import start

    out: dict[str, Any] = {k: run[k] for k in ("variant", "round", "workload", "load")}
    out["ok"] = False
    cpus, seconds = run["cpus"], run["seconds"]
    work = Path(f"/tmp/rw{idx}")
    att = None
    try:
        att = Attached(run)
        if run["kind"] == "latency":
            lw = _workload(run["load"], run)
            load = start(lw, cpus, 3600, work / "load")
            load.wait_children(getattr(lw, "per_cpu", 0) * cpus or 1, timeout=_wait(run, 120))
            deadline = time.monotonic() + _wait(run, 900)
            while hasattr(lw, "compiling") and not lw.compiling(work / "load"):
                if time.monotonic() > deadline or load.proc.poll() is not None:
                    raise RuntimeError("the build never reached its compile phase")
                time.sleep(0.5)
            time.sleep(0.2)
            target = start(_workload(run["workload"], run), cpus, seconds, work / "target",
                           cgroup=CGROUP)
            out["metrics"] = target.finish(timeout=_wait(run, 60 + 40 * seconds))
            out["load_metrics"] = load.finish(timeout=_wait(run, 60), stop=True)
        elif run["kind"] == "batch":
            w = _workload(run["workload"], run)
            hints = None
            if run.get("hint") == "batch":
                if run["workload"] not in calib:
                    raise RuntimeError("ljf hints need a default run of this batch first")
                unit_ns = calib[run["workload"]]

                def hints(jobs: list[tuple[int, int]]) -> None:
                    for pid, units in jobs:
                        att.sched.update_map("expected_runtime", pid, int(units * unit_ns))

            out["metrics"] = w.run_batch(cpus, work, timeout=900, on_forked=hints)
            if run["variant"] == "default":
                calib[run["workload"]] = out["metrics"]["total_cpu_s"] * 1e9 / sum(w.units())
        else:
            out["metrics"] = start(_workload(run["workload"], run), cpus, 0,
                                   work).finish(timeout=3000)
        if not att.still_on():
            out["error"] = "scheduler ejected during the run"
        else:
            out["ok"] = True
    except Exception as e:  # one failed run must not lose the others
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        if att is not None:
            att.close()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return out


def guest_main(plan_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    CGROUP.mkdir(exist_ok=True)
    calib: dict[str, float] = {}
    failed = 0
    with open(RESULTS, "w") as res:
        for idx, run in enumerate(plan["runs"]):
            if run.get("tunables") == "cgroup":
                run["tunables"] = {"target_cgid": os.stat(CGROUP).st_ino,
                                   **TUNED.get(run["variant"], {})}
            out = _one(run, calib, idx)
            failed += not out["ok"]
            res.write(json.dumps(out) + "\n")
            res.flush()
            print(f"bench: {run['variant']} {run['workload']} round {run['round']}: "
                  f"{'ok' if out['ok'] else 'FAILED ' + out.get('error', '')}", flush=True)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# host side


def plan(table: str, variants: list[str], rounds: int, cpus: int, seconds: float, load: str,
         out_dir: Path, only: list[str] | None = None, build_jobs: int = 2,
         virtual_time: bool = False, build_lib: str = "bpf") -> list[dict[str, Any]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from guest_driver import compile_objects

    from schedcp.workloads.build import source_tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/
    from tests.fixtures.scx_examples import examples_dir

    from schedcp_common.vm import find_kit
    from schedcp_common.workload import probe_binary

    objs = compile_objects(sorted({o for v in variants if (o := VARIANTS[v][0])
                                   and not o.startswith("exe:")}), out_dir)
    exe_dir = examples_dir(find_kit()) / "bin"
    source = str(source_tree()) if table == "build" or load == "build" else ""
    probe = str(probe_binary())
    names = {"latency": LATENCY_TOOLS, "batch": BATCHES, "build": ("build",)}[table]
    names = tuple(n for n in names if not only or n in only)
    runs = []
    for r in range(rounds):
        for name in names:
            for v in variants:  # default first: it calibrates ljf's hints
                obj, hint = VARIANTS[v]
                if hint != {"batch": "batch", "latency": "cgroup"}.get(table, hint):
                    hint = None  # ljf's hints only for batches, interactive's target only here
                runs.append({
                    "variant": v, "round": r, "workload": name, "kind": table,
                    "load": load if table == "latency" else None, "cpus": cpus,
                    "seconds": seconds, "source": source, "probe": probe, "hint": hint,
                    "build_jobs": build_jobs, "build_lib": build_lib,
                    "virtual_time": virtual_time,
                    "obj": objs.get(obj) if obj and not obj.startswith("exe:") else None,
                    "exe": str(exe_dir / obj[4:]) if obj.startswith("exe:") else None,
                    "tunables": "cgroup" if hint == "cgroup" else None})
    return runs


# the number each table ranks by, and whether lower is better
KEY = {"frames": "miss_ratio", "cyclictest": "p99_ms", "hackbench": "time_s",
       "perf-pipe": "usecs_per_op", "perf-messaging": "time_s", "build": "wall_s"}
LOAD_KEY = {"stress-cpu": "bogo_ops_per_s", "build": "compiled"}


def summarize(results: list[dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    from stats import median_ci

    rows: dict[str, Any] = {}
    for r in results:
        if not r["ok"]:
            continue
        cell = rows.setdefault(r["workload"], {}).setdefault(r["variant"], {})
        for k, v in r["metrics"].items():
            cell.setdefault(k, []).append(v)
        for k, v in (r.get("load_metrics") or {}).items():
            cell.setdefault("load_" + k, []).append(v)
    out: dict[str, Any] = {}
    for wl, per in rows.items():
        out[wl] = {}
        for v in variants:
            if v not in per:
                continue
            out[wl][v] = {k: dict(zip(("median", "low", "high"), median_ci(vals), strict=True),
                                  n=len(vals), runs=vals) for k, vals in per[v].items()}
    return out


def render(params: dict[str, Any], table: dict[str, Any], failed: list[dict[str, Any]]) -> None:
    """The text table (also from a saved --json: ``--render FILE``)."""
    from stats import fmt

    clock = "guest-virtual time (-icount)" if params["virtual_time"] else "plain TCG wall time"
    print(f"{params['table']}: {params['cpus']} vCPU(s), {clock}, {params['n']} rounds"
          + (f", load {params['load']}, {params['seconds']:g} s per tool"
             if params["table"] == "latency" else "")
          + (f", make -j{params.get('build_jobs', 2) * params['cpus']}"
             f" lib{params.get('build_lib', 'bpf')}.a"
             if "build" in (params["table"], params.get("load")) else ""))
    for wl, per in table.items():
        key = KEY.get(wl, "makespan_s")
        base = per.get("default", {}).get(key, {}).get("median")
        print(f"\n{wl}: {key} (lower is better), median [95% CI] n, gain vs default"
              + ("; vs bound = makespan / lower bound" if key == "makespan_s" else ""))
        for v, cell in per.items():
            med = cell[key]["median"] if key in cell else 0
            gain = f"{base / med:6.2f}x" if base and med else "     - "
            extra = ""
            if key == "makespan_s":
                extra = f"  vs bound {cell['vs_bound']['median']:.2f}"
            if "fps" in cell:
                extra += f"  fps {cell['fps']['median']:.1f}"
            if "p99_ms" in cell and key != "p99_ms":
                extra += f"  p99 {cell['p99_ms']['median']:.3f} ms"
            lk = "load_" + LOAD_KEY.get(params.get("load") or "", "")
            if lk in cell:
                lbase = per.get("default", {}).get(lk, {}).get("median")
                rel = cell[lk]["median"] / lbase if lbase else float("nan")
                extra += f"  load {cell[lk]['median']:.4g} ({rel:.2f}x default)"
            print(f"  {v:12} {fmt(cell[key]['runs']) if key in cell else '-':40} {gain}{extra}")
    for r in failed:
        print(f"FAILED: {r['variant']} {r['workload']} round {r['round']}: {r.get('error')}")


def main() -> int:
    import argparse
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from guest_driver import run_plan
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", choices=("latency", "batch", "build"))
    ap.add_argument("--render", type=Path, help="print the text table of a saved --json run")
    ap.add_argument("-n", type=int, default=3, help="rounds (each runs every variant once)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0, help="latency tools' length")
    ap.add_argument("--load", choices=("stress-cpu", "build"), default="stress-cpu")
    ap.add_argument("--build-jobs", type=int, default=2,
                    help="make jobs per CPU of the build (table or load; default 2)")
    ap.add_argument("--build-lib", choices=("bpf", "subcmd"), default="bpf",
                    help="what the build makes: libbpf.a (default, minutes a run in the "
                    "guest) or libsubcmd.a (7 files, about a minute)")
    ap.add_argument("--virtual-time", action="store_true")
    ap.add_argument("--variants", default=None, help="comma list (default: all)")
    ap.add_argument("--workloads", default=None, help="comma list: only these of the table")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.render:
        doc = json.loads(args.render.read_text())
        render(doc["params"], doc["table"], doc["failed"])
        return 0
    if not args.table:
        ap.error("--table is required")
    variants = args.variants.split(",") if args.variants else list(VARIANTS)
    if unknown := [v for v in variants if v not in VARIANTS]:
        ap.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-") as d:
        runs = plan(args.table, variants, args.n, args.cpus, args.seconds, args.load, Path(d),
                    args.workloads.split(",") if args.workloads else None, args.build_jobs,
                    args.virtual_time, args.build_lib)
        per_run = {"latency": 30 + 3 * args.seconds, "batch": 120, "build": 900}[args.table]
        slow = 12 if args.virtual_time else 1
        results, _ = run_plan(runs, Path(d), timeout=slow * (120 + per_run * len(runs)),
                               quiet=args.json, cpus=args.cpus, virtual_time=args.virtual_time,
                               guest_script=Path(__file__).resolve())
    table = summarize(results, variants)
    failed = [r for r in results if not r["ok"]]
    if args.json:
        params = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        print(json.dumps({"params": params, "table": table, "failed": failed}, indent=1))
    else:
        render(vars(args), table, failed)
    return 1 if failed or len(results) != len(runs) else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--guest"]:
        raise SystemExit(guest_main(sys.argv[2]))
    raise SystemExit(main())
