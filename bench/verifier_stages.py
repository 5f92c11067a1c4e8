"""Execution Verifier cost: seconds per stage for each of our schedulers, uncached and cached.

The kernel-verifier and dynamic stages share one micro-VM boot on hosts without sched_ext;
`trial` below is that boot's wall time (boot + baseline workload + candidate workload).
Target (issue 3): the whole pipeline <= 60 s including the VM stage.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from schedcp_common.policy import default_policies_dir, load_policies
from schedcp_helper.verifier.pipeline import Verifier, VerifyRequest
from schedcp_helper.verifier.target import Target

REPO = Path(__file__).resolve().parents[1]
STAGES = ("input", "compile", "static", "kernel-verifier", "dynamic", "token")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--policy", action="append", help="only these (default: all of ours)")
    args = ap.parse_args()
    policies = load_policies(default_policies_dir())
    names = args.policy or sorted(n for n, p in policies.items() if p.kind == "bpf")
    target = Target.detect()
    target.functions()  # the kernel's function list is cached once per kit: not a stage cost
    rows = []
    with tempfile.TemporaryDirectory() as d:
        v = Verifier(target, Path(d), [target.kit.include] if target.kit else [],
                     [REPO / "bpf" / "schedcp.bpf.h"])
        for name in names:
            p = policies[name]
            req = VerifyRequest(source=(REPO / "bpf" / p.source).read_bytes(), uid=0, name=name,
                                policy=p)
            t = time.monotonic()
            report = v.verify(req)
            total = time.monotonic() - t
            t = time.monotonic()
            cached = v.verify(req)
            rows.append({"policy": name, "ok": report.ok, "total": round(total, 2),
                         "cached": round(time.monotonic() - t, 2), "cache_hit": cached.cached,
                         "refused": "" if report.ok else report.stages[-1].message,
                         **{s.name: s.seconds for s in report.stages}})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"target kernel {target.release}; micro-VM: {not target.direct}")
        head = f"{'policy':12}" + "".join(f"{s:>16}" for s in STAGES)
        print(head + f"{'total':>8}{'cached':>8}  verdict")
        for r in rows:
            cells = "".join(f"{r.get(s, float('nan')):16.2f}" for s in STAGES)
            print(f"{r['policy']:12}{cells}{r['total']:8.1f}{r['cached']:8.2f}  "
                  f"{'verified' if r['ok'] else 'refused: ' + r['refused'][:200]}")
        worst = max(r["total"] for r in rows)
        print(f"slowest pipeline {worst:.1f} s: target <= 60 s "
              f"{'met' if worst <= 60 else 'missed'}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
