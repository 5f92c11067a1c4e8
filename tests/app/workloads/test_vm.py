"""In the micro-VM (one boot, ~1-2 min): the catalogue's programs run from the host's
read-only root, the latency tools inside a target cgroup under stress-ng's hogs, and every
output parses. The build runs on the host only (test_catalogue): minutes in the guest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from schedcp_common.workload import probe_binary

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.vm
def test_catalogue_runs_and_parses_in_the_guest(guest):
    r = guest(f"cd {ROOT} && {sys.executable} -m tests.app.workloads.guest_run "
              f"{probe_binary()} && cp results.jsonl \"$OLDPWD\"/", timeout=600)
    assert r.result.returncode == 0, r.output[-2000:]
    docs = {d["name"]: d for d in map(json.loads, (r.out_dir / "results.jsonl").read_text()
                                      .splitlines())}
    bad = {n: d["error"] for n, d in docs.items() if not d["ok"]}
    assert not bad, bad
    assert len(docs) == 10
    for name in ("cyclictest", "frames", "hackbench", "perf-pipe", "perf-messaging"):
        m = docs[name]["metrics"]
        assert m["load_bogo_ops"] > 0, (name, m)  # the hogs really ran beside it
    assert docs["cyclictest"]["metrics"]["samples"] >= 90
    assert docs["frames"]["metrics"]["frames"] >= 20
    for name in ("batch-gzip", "batch-sha256", "batch-sort", "batch-sqlite"):
        m = docs[name]["metrics"]
        # an exact bound (see Batch.run_batch): two vCPUs cannot beat it
        assert m["makespan_s"] >= 0.95 * m["lower_bound_s"] > 0, (name, m)
    print("\n" + "\n".join(f"{n}: {json.dumps(d['metrics'])[:160]}" for n, d in docs.items()))
