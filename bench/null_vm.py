"""The VM part of the null experiment (``bench/null_experiment.py --vm``): in ONE guest boot,
the kernel default against itself and ljf (with its runtime hints) against the default on the
long-tail batch, each comparison repeated, decided by the same A/B machinery as the loop.

The guest runs a fixed plan (bench/guest_driver.py: per run attach the scheduler, run the
probe, detach) laid out in the order TrialRunner asks for arms (B A A B B A ...), up to the
cap; the host then replays each set's runs through TrialRunner, whose sequential decision
stops at the same run it would have stopped at live (it only ever reads the next value). Runs
past the stop are measured but not used. One unhinted default run first: the discarded
warm-up, and the calibration the hints are derived from.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guest_driver import compile_objects, run_plan

from schedcp.measure.effect import describe_effect
from schedcp.measure.stats import spread
from schedcp.measure.trials import StopRule, TrialRunner
from schedcp.model import Metrics
from schedcp_common.workload.build import probe_binary
from schedcp_common.workload.run import Batch, invocation

COMPARISONS = {"default vs default": (None, None), "ljf (hints) vs default": ("ljf", "batch")}


def _order(pairs: int) -> list[str]:
    out: list[str] = []
    for p in range(pairs):
        out += ["B", "A"] if p % 2 == 0 else ["A", "B"]
    return out


def vm_part(repeats: int = 2, pairs: int = 6, unit_scale: float = 0.5,
            virtual_time: bool = False) -> dict:
    params = Batch(tasks=40, unit_scale=unit_scale)
    argv = list(invocation(params, probe_binary()).argv)
    rule = StopRule(max_pairs=pairs)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="schedcp-null-vm-") as d:
        objs = compile_objects(["ljf"], Path(d))
        runs = [{"variant": "warm-up", "round": -1, "obj": None, "hint": None,
                 "hint_map": None, "argv": argv, "timeout": 240}]
        sets = []
        for r in range(repeats):
            for name, (obj, hint) in COMPARISONS.items():
                start = len(runs)
                for arm in _order(pairs):
                    b = arm == "B" and obj is not None
                    runs.append({"variant": f"{name}/{arm}", "round": r,
                                 "obj": objs[obj] if b else None, "hint": hint if b else None,
                                 "hint_map": "expected_runtime" if b else None, "argv": argv,
                                 "timeout": 240})
                sets.append((name, r, start))
        results, rc = run_plan(runs, Path(d), timeout=180 + 90 * len(runs), quiet=True,
                               virtual_time=virtual_time)
    rows, defaults = [], []
    for name, r, start in sets:
        chunk = results[start:start + 2 * pairs]
        it = iter(chunk)

        def measure(it=it) -> Metrics:
            res = next(it)
            if not res.get("ok"):
                return Metrics(failed=str(res.get("error") or "failed"))
            m = res["doc"]["makespan_s"]
            return Metrics(makespan_s=m, seconds=m)

        ts = TrialRunner(rule).run(measure, lambda arm: None, "makespan_s")
        ev = ts.evidence()
        defaults += ts.values("A") + (ts.values("B") if name.startswith("default vs") else [])
        rows.append({"name": name, "repeat": r, "decision": ts.decision,
                     "effect": describe_effect(ev), "n_a": ev["n_a"], "n_b": ev["n_b"],
                     "ratio": ev["ratio"], "ratio_low": ev["ratio_low"],
                     "ratio_high": ev["ratio_high"], "a": ev["a"], "b": ev["b"]})
    return {"rows": rows, "guest_rc": rc, "runs_planned": len(runs),
            "runs_ok": sum(1 for x in results if x.get("ok")),
            "default_spread": round(spread(defaults) or 0.0, 3),
            "default_median_s": round(statistics.median(defaults), 2) if defaults else None,
            "default_runs": len(defaults), "seconds": round(time.perf_counter() - t0, 1),
            "unit_scale": unit_scale, "pairs_cap": pairs, "virtual_time": virtual_time}
