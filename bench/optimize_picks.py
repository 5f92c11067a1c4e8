"""What `schedcp optimize` picks for each real workload of the catalogue, with the effect it
measured: ONE micro-VM boot, inside it a private system bus and the root helper (as
`schedcp demo` does), then `schedcp optimize --json` (offline planner) as an ordinary client on
each batch of the catalogue and on the build, each run as a command
(`python -m schedcp.workloads run NAME`), each optimization starting from the kernel default.

    python bench/optimize_picks.py [--workloads batch-gzip,...,build] [--iterations 2]
           [--trial-budget 60] [--unit-scale 0.5] [--build-jobs 2] [--build-lib subcmd]
           [--cpus 2] [--save FILE]
    python bench/optimize_picks.py --render FILE   (the table of a --save file)

The metric is what optimize judges a command by: its wall time, Python's start-up in the
guest included (a fixed cost no scheduler shortens, so effects here are diluted against the
batch tables of bench/real_workloads.py). The effect is the loop's own A/B verdict (median
ratio, its exact 98 % interval, runs) of what it kept, or of each candidate when it kept
nothing. Plain TCG: wall times are biased by whatever else the host runs; the load average
before and after is printed with the table. Exit status: 0 every optimization ran to its end,
1 one did not, 2 the guest could not start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = "picks.jsonl"
DEFAULT_WORKLOADS = ("batch-gzip", "batch-sha256", "batch-sort", "batch-sqlite", "build")


# ---------------------------------------------------------------------------------------------
# guest side


def _command(name: str, params: dict[str, Any], workdir: str) -> list[str]:
    """``python -S``: the runner is stdlib only, and in the TCG guest the venv's site set-up
    alone costs ~5 s of every run (4.8 s vs 0.23 s for ``-c pass``), time no scheduler
    changes that would dilute every effect."""
    cmd = [sys.executable, "-S", "-m", "schedcp.workloads",
           "run", name, "--cpus", str(params["cpus"]), "--workdir", workdir]
    if name.startswith("batch-"):
        cmd += ["--unit-scale", str(params["unit_scale"])]
    if name == "build":
        cmd += ["--source", params["source"], "--jobs-per-cpu", str(params["build_jobs"]),
                "--lib", params["build_lib"]]
    return cmd


def guest_main(params_path: str) -> int:
    import schedcp
    from schedcp.demo import NoHelper, back_to_default, optimize, private_helper

    params = json.loads(Path(params_path).read_text())
    # -S leaves the venv out: the package comes from PYTHONPATH, inherited by the commands
    # (not an `env` prefix, which would make the command's identity "env")
    os.environ["PYTHONPATH"] = str(Path(schedcp.__file__).resolve().parents[1])
    work = Path(tempfile.mkdtemp(prefix="schedcp-picks-", dir="/run"))
    failed = 0
    try:
        with private_helper(work) as address, open(RESULTS, "w") as res:
            for name in params["workloads"]:
                cmd = _command(name, params, str(work / "w" / name))
                row: dict[str, Any] = {"workload": name, "command": cmd}
                t0 = time.monotonic()
                if name.startswith("batch-"):  # inputs first: the runs fork only the jobs
                    prep = subprocess.run([*cmd, "--prepare"], capture_output=True, text=True)
                    if prep.returncode != 0:
                        row.update(rc=prep.returncode, error=prep.stderr.strip()[-500:])
                back_to_default(address)
                print(f"\n== {name}: schedcp optimize -- {' '.join(cmd[1:])}", flush=True)
                if "error" not in row:
                    steps, rc = optimize(cmd, params["iterations"], params["trial_budget"])
                    row.update(rc=rc, steps=steps)
                row["wall_s"] = time.monotonic() - t0
                failed += row["rc"] != 0
                res.write(json.dumps(row) + "\n")
                res.flush()
    except NoHelper as e:
        print(e, flush=True)
        return 1
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# host side: the table


def _tun(plan: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((plan.get("tunables") or {}).items()))


def summarize(row: dict[str, Any]) -> dict[str, Any]:
    """One workload: what was kept (or nothing), its effect, and every candidate's verdict."""
    from schedcp.measure.effect import describe_effect

    steps = row.get("steps") or []
    tried = []
    for s in steps:
        oc = s.get("outcome") if s.get("role") == "execution" else None
        if not oc:
            continue
        ev = oc.get("trials") or {}
        label = f"{oc['plan']['policy']} {_tun(oc['plan'])}".strip()
        effect = (describe_effect(ev) if ev else
                  f"refused at {oc.get('refused_at')}" if not oc.get("verified") else
                  oc.get("message", ""))
        tried.append({"scheduler": label, "effect": effect, "decision": ev.get("decision"),
                      "median_a": ev.get("median_a"), "median_b": ev.get("median_b"),
                      "n": (ev.get("n_a") or 0) + (ev.get("n_b") or 0)})
    stop = next((s for s in reversed(steps) if s.get("role") == "stop"), {})
    kept = stop.get("kept") or {}
    warm = next((s.get("baseline") for s in steps if s.get("role") == "observation"), None)
    error = row.get("error") or (f"optimize exited {row.get('rc')} before its end"
                                 if not stop else None)
    out = {"workload": row["workload"], "wall_s": row["wall_s"], "rc": row.get("rc"),
           "error": error, "tried": tried, "stop": stop.get("message", ""),
           "kind": next((s["profile"]["kind"] for s in steps if s.get("role") == "observation"),
                        None),
           "warmup_s": (warm or {}).get("makespan_s")}
    if kept.get("kept"):
        out["picked"] = f"{kept['policy']} {_tun(kept)}".strip()
        out["effect"] = describe_effect(kept.get("evidence"))
        ev = kept.get("evidence") or {}
        out["n"] = (ev.get("n_a") or 0) + (ev.get("n_b") or 0)
    else:
        out["picked"] = "kept nothing"
        out["effect"] = ("; ".join(f"{t['scheduler']}: {t['effect']}" for t in tried)
                         or stop.get("message", "no candidate measured"))
        out["n"] = sum(t["n"] for t in tried)
    return out


def render(params: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    print(f"\nwhat `schedcp optimize` picks (offline planner, goal throughput, "
          f"{params['cpus']} vCPUs, plain TCG, --max-iterations {params['iterations']}, "
          f"--trial-budget {params['trial_budget']:g} s, batches at --unit-scale "
          f"{params['unit_scale']:g}, build: lib{params.get('build_lib', 'bpf')} with make "
          f"-j{params['build_jobs'] * params['cpus']}); "
          f"load average {params.get('load_before', '?')} before, "
          f"{params.get('load_after', '?')} after")
    print(f"  {'workload':13} {'kind':6} {'picked':22} {'wall':>6}  effect (median ratio, "
          "98 % interval, candidate+baseline runs)")
    for r in rows:
        if r.get("error"):
            print(f"  {r['workload']:13} {'-':6} {'FAILED':22} {r['wall_s']:5.0f}s  {r['error']}")
            continue
        print(f"  {r['workload']:13} {r['kind'] or '-':6} {r['picked'][:22]:22} "
              f"{r['wall_s']:5.0f}s  {r['effect']}")
        for t in r["tried"]:
            meds = (f"median {t['median_b']:.2f} s vs {t['median_a']:.2f} s"
                    if t["median_a"] and t["median_b"] else "")
            print(f"      tried {t['scheduler'][:30]:30} {t['effect']}  {meds}")
        print(f"      stop: {r['stop']}")


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS))
    ap.add_argument("--iterations", type=int, default=2, help="optimize --max-iterations")
    ap.add_argument("--trial-budget", type=float, default=60, help="seconds of A/B trials "
                    "per candidate (at least 5+5 runs whatever the budget)")
    ap.add_argument("--unit-scale", type=float, default=0.5, help="the batches' job length")
    ap.add_argument("--build-jobs", type=int, default=2, help="make jobs per CPU")
    ap.add_argument("--build-lib", choices=("subcmd", "bpf"), default="subcmd", help="the "
                    "build: libsubcmd (default, 7 files) or libbpf (~40 files: minutes a run "
                    "in the guest, so 11+ runs take long)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds before the guest is "
                    "stopped")
    ap.add_argument("--save", type=Path, help="also write params and rows here (JSON)")
    ap.add_argument("--render", type=Path, help="print the table of a --save file")
    args = ap.parse_args()
    if args.render:
        doc = json.loads(args.render.read_text())
        render(doc["params"], doc["rows"])
        return 0
    from schedcp.demoboot import boot
    from schedcp.workloads import catalogue

    names = args.workloads.split(",")
    if unknown := [n for n in names if n not in catalogue()
                   or catalogue()[n].kind not in ("batch", "build")]:
        ap.error(f"not a batch or the build: {unknown}")
    params: dict[str, Any] = {
        "workloads": names, "iterations": args.iterations, "trial_budget": args.trial_budget,
        "unit_scale": args.unit_scale, "build_jobs": args.build_jobs, "cpus": args.cpus,
        "build_lib": args.build_lib,
        "source": "", "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    if "build" in names:
        from schedcp.workloads.build import source_tree

        params["source"] = str(source_tree())  # extracted on the host; read-only in the guest
    from schedcp_common.vm import find_kit

    env = {"SCHEDCP_LIBBPF": str(find_kit().libbpf), "SCHEDCP_EMBEDDER": "hash",
           "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="schedcp-picks-") as d:
        os.chmod(d, 0o755)
        (Path(d) / "params.json").write_text(json.dumps(params))
        rc = boot(f"{sys.executable} {Path(__file__).resolve()} --guest params.json", Path(d),
                  env, announce=True, timeout=args.timeout, cpus=args.cpus)
        res = Path(d) / RESULTS
        raw = [json.loads(x) for x in res.read_text().splitlines()] if res.is_file() else []
    params["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    params["total_s"] = time.monotonic() - t0
    rows = [summarize(r) for r in raw]
    if args.save:
        args.save.write_text(json.dumps({"params": params, "rows": rows, "raw": raw}, indent=1))
    render(params, rows)
    print(f"total {params['total_s']:.0f} s, boot included")
    if rc is None:
        return 2
    return 0 if rc == 0 and len(rows) == len(names) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--guest"]:
        raise SystemExit(guest_main(sys.argv[2]))
    raise SystemExit(main())
