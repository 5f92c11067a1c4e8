"""Does the loop keep what works and only that? The null experiment.

1. Simulated part: the real loop (offline planner, Execution's A/B trials, Learning) and the
   real policy repository (one file, a distinct workload per optimization) against a helper
   whose schedulers change the makespan by a *known* factor, with log-normal run-to-run noise
   of sigma (default 8 %: the spread measured in the VM, see the VM part and the README).
   - null optimizations: every candidate has no effect. A kept scheduler is a false keep; a
     candidate recorded as regressed (or failed) is a false ban.
   - real optimizations: the planner's first choice has no effect, one later candidate makes
     the makespan 20 % shorter. Keeping exactly that one is a true keep.
   Several hundred optimizations; targets at sigma = 8 %: false keeps <= 5 %, false bans
   <= 2 %, the real -20 % kept >= 95 %. Reports the median number of runs per candidate and
   what that costs in wall time at the VM batch's run length.
2. VM part (``--vm``): in one micro-VM boot, through the same A/B machinery (TrialRunner and
   its statistic), the kernel default against itself and ljf against the default on the
   long-tail batch, each repeated (``--vm-repeats``).

    python bench/null_experiment.py [--optimizations 300] [--sigma 0.08] [--vm] [--json]

Exit status 0 when the simulated targets are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.agent.sim import SimHelper  # noqa: E402

from schedcp.agent.loop import LoopConfig, OptimizationLoop  # noqa: E402
from schedcp.agent.offline import OfflinePlanner  # noqa: E402
from schedcp.agent.tools import AgentTools  # noqa: E402
from schedcp.measure.trials import StopRule  # noqa: E402
from schedcp.model import Metrics, WorkloadProfile  # noqa: E402
from schedcp.repo import PolicyRepository  # noqa: E402

TARGETS = {"false_keep_rate": 0.05, "false_ban_rate": 0.02, "true_keep_rate": 0.95}
VM_RUN_S = 20.0  # the demo batch's makespan in the TCG guest (bench/sched_batch.py)


class NoisyExecutor:
    """Makespan = the VM batch's length x the running scheduler's effect x log-normal noise
    (sigma), so the goal's time budget caps the trials as it would in the VM; plus an
    optional linear drift of the machine over the optimization (``drift`` per 100 runs)."""

    target_pids = ()
    hint_sink = fork_sink = None

    def __init__(self, helper: SimHelper, sigma: float, rng: random.Random, n: int,
                 drift: float = 0.0):
        self.helper, self.sigma, self.rng, self.n, self.drift = helper, sigma, rng, n, drift
        self.runs = 0

    def observe(self, goal: str) -> tuple[WorkloadProfile, Metrics]:
        # no description: each optimization is an independent experiment, so none may borrow
        # another's best through similarity (the planner's retrieval falls back to the kind)
        prof = WorkloadProfile("batch", goal, 42, [42], exe="/usr/bin/crunch",
                               cmdline=["/usr/bin/crunch", f"job{self.n}"])
        return prof, self.measure()

    def measure(self) -> Metrics:
        self.runs += 1
        value = (self.helper.makespan() / 10.0 * VM_RUN_S
                 * math.exp(self.rng.gauss(0.0, self.sigma)) * (1 + self.drift * self.runs / 100))
        return Metrics(makespan_s=value, seconds=value, source="simulated makespan")


def simulate(repo, n: int, sigma: float, seed: int, drift: float, real: bool,
             rule: StopRule | None = None) -> dict:
    """``n`` optimizations; with ``real`` one candidate (the planner's second) is -20 %."""
    rng = random.Random(seed)
    kept_any = banned_opts = true_keeps = 0
    bans = candidates = 0
    runs_per_candidate: list[int] = []
    decisions: dict[str, int] = {}
    real_arm = None
    t0 = time.perf_counter()
    for i in range(n):
        helper = SimHelper({})
        tools = AgentTools(repo=repo, client=helper)
        planner = OfflinePlanner(tools=tools)
        executor = NoisyExecutor(helper, sigma, rng, i + (100000 if real else 0), drift)
        if real:
            # the planner's candidates are the same for every workload of this profile: the
            # second one it would try is the one that works
            if real_arm is None:
                probe = OptimizationLoop(OfflinePlanner(tools=tools), tools,
                                         NoisyExecutor(SimHelper({}), 0.0, rng, -1),
                                         LoopConfig(max_iterations=2, patience=9)).run()
                plans = [s["plan"] for s in probe.steps if s["role"] == "planning" and s["plan"]]
                real_arm = plans[1]["policy"] + json.dumps(plans[1]["tunables"], sort_keys=True)
            helper.effect = {real_arm: 0.8}
        result = OptimizationLoop(planner, tools, executor,
                                  LoopConfig(goal="throughput", max_iterations=8,
                                             patience=3, rule=rule)).run()
        kept = helper.kept
        if kept is not None:
            kept_any += 1
            if real and kept == real_arm:
                true_keeps += 1
        opt_banned = False
        for s in result.steps:
            if s["role"] == "execution" and s["outcome"].get("trials"):
                ev = s["outcome"]["trials"]
                runs_per_candidate.append(ev["n_a"] + ev["n_b"])
            if s["role"] == "learning":
                le = s["lesson"]
                key = le["policy"] + json.dumps(le["tunables"], sort_keys=True)
                if real and key == real_arm:
                    continue
                candidates += 1
                decisions[le["outcome"]] = decisions.get(le["outcome"], 0) + 1
                if le["outcome"] in ("regressed", "failed"):
                    bans += 1
                    opt_banned = True
        banned_opts += opt_banned
    secs = time.perf_counter() - t0
    out = {"optimizations": n, "sigma": sigma, "drift": drift, "seconds": round(secs, 1),
           "null_candidates": candidates, "decisions_of_null_candidates": decisions,
           "median_trials": statistics.median(runs_per_candidate),
           "trials_p90": sorted(runs_per_candidate)[int(0.9 * len(runs_per_candidate))],
           "runs_per_optimization": round(sum(runs_per_candidate) / n, 1),
           "vm_minutes_per_optimization": round(
               sum(runs_per_candidate) / n * VM_RUN_S / 60, 1)}
    if real:
        out.update(real_arm=real_arm, true_keep_rate=true_keeps / n,
                   false_ban_rate_per_candidate=bans / max(candidates, 1))
    else:
        out.update(false_keep_rate=kept_any / n, false_ban_rate=banned_opts / n,
                   false_ban_rate_per_candidate=bans / max(candidates, 1))
    return out


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of a rate (Wilson score)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (round((c - h) / d, 4), round((c + h) / d, 4))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizations", type=int, default=300, help="per scenario")
    ap.add_argument("--sigma", type=float, default=0.08, help="run-to-run noise (log sd)")
    ap.add_argument("--drift", type=float, default=0.0,
                    help="machine slows by this fraction per 100 runs (tests interleaving)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--vm", action="store_true", help="also run the VM part")
    ap.add_argument("--vm-repeats", type=int, default=2)
    ap.add_argument("--vm-virtual-time", action="store_true",
                    help="the VM part on qemu's instruction-counted clock (-icount): guest "
                    "time does not depend on the host's load, so the runs' spread is the "
                    "guest's own")
    ap.add_argument("--vm-scale", type=float, default=0.5, help="the VM batch's unit scale")
    ap.add_argument("--rule", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a StopRule field (e.g. max_pairs=6); default: the "
                    "throughput goal's rule, for runs of the VM batch's length")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    over = {k: float(v) if "." in v else int(v) for k, v in (r.split("=", 1) for r in args.rule)}
    rule = StopRule.for_goal("throughput", **over)
    t0 = time.perf_counter()
    with (tempfile.TemporaryDirectory(prefix="schedcp-null-") as d,
          PolicyRepository.open(Path(d) / "policies.db", embedder="hash") as repo):
        null = simulate(repo, args.optimizations, args.sigma, args.seed, args.drift, False,
                        rule)
        real = simulate(repo, args.optimizations, args.sigma, args.seed + 1, args.drift,
                        True, rule)
    n = args.optimizations
    summary = {
        "false_keep_rate": null["false_keep_rate"],
        "false_ban_rate": null["false_ban_rate"],
        "true_keep_rate": real["true_keep_rate"],
        "median_trials": statistics.median([null["median_trials"], real["median_trials"]]),
        "intervals_95": {"false_keep_rate": wilson(null["false_keep_rate"] * n, n),
                         "false_ban_rate": wilson(null["false_ban_rate"] * n, n),
                         "true_keep_rate": wilson(real["true_keep_rate"] * n, n)},
        "sigma": args.sigma, "optimizations_per_scenario": n, "rule": vars(rule),
        "null": null, "real": real,
    }
    met = {k: (summary[k] <= v if k != "true_keep_rate" else summary[k] >= v)
           for k, v in TARGETS.items()}
    summary["targets"] = {k: {"target": v, "met": met[k]} for k, v in TARGETS.items()}
    if args.vm:
        from null_vm import vm_part

        summary["vm"] = vm_part(args.vm_repeats, unit_scale=args.vm_scale,
                                 virtual_time=args.vm_virtual_time)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"null experiment: {n} optimizations per scenario, noise sigma {args.sigma:.0%}"
              f"{f', drift {args.drift:+.0%}/100 runs' if args.drift else ''}")
        for k in TARGETS:
            lo, hi = summary["intervals_95"][k]
            print(f"  {k:16} {summary[k]:6.1%}  (95 % CI {lo:.1%}..{hi:.1%})  target "
                  f"{'<=' if k != 'true_keep_rate' else '>='} {TARGETS[k]:.0%}: "
                  f"{'met' if met[k] else 'MISSED'}")
        print(f"  runs per candidate (A+B): median {summary['median_trials']:g}; null "
              f"candidates {null['decisions_of_null_candidates']}")
        print(f"  runs per optimization: null {null['runs_per_optimization']}, real "
              f"{real['runs_per_optimization']}; at {VM_RUN_S:g} s a run (the VM batch): "
              f"{null['vm_minutes_per_optimization']} / {real['vm_minutes_per_optimization']} "
              "min of trials per optimization")
        if "vm" in summary:
            for row in summary["vm"]["rows"]:
                print(f"  VM: {row['name']:28} {row['effect']}  [{row['decision']}]")
            print(f"  VM run-to-run spread of the default (robust CV): "
                  f"{summary['vm']['default_spread']}")
        print(f"  wall time {summary['wall_s']:.0f} s")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
