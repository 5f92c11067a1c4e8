"""In the guest, under the kernel's default scheduler: every mode runs, in one boot, and the
default scheduler passes the dynamic stage's checks."""

from __future__ import annotations

import pytest

from schedcp_common.workload import (
    Batch,
    BatchResult,
    Latency,
    LatencyResult,
    Mixed,
    MixedResult,
    invocation,
    judge_mixed,
    parse,
    passed,
    probe_binary,
)


@pytest.mark.vm
def test_default_scheduler_runs_every_mode_and_passes_the_judgement(guest):
    binary = probe_binary()  # the real cache: the guest sees the host's files read-only
    runs = {
        "mixed": invocation(Mixed(out="mixed.json"), binary),
        "batch": invocation(Batch(tasks=8, short_units=1, long_factor=8, unit_scale=0.5,
                                  pids_file="pids", out="batch.json"), binary),
        "latency": invocation(Latency(duration_s=1.0, out="latency.json"), binary),
    }
    script = "set -e\ncat /sys/kernel/sched_ext/state\n" + "".join(
        f"{inv.line} > /dev/null\n" for inv in runs.values())
    r = guest(script, timeout=150)
    assert r.result.returncode == 0, r.output
    assert r.output.splitlines()[0] == "disabled"  # the kernel's default scheduler
    res = {m: parse((r.out_dir / f"{m}.json").read_text(), m) for m in runs}

    mixed = res["mixed"]
    assert isinstance(mixed, MixedResult) and mixed.ncpu == 2
    checks = judge_mixed(mixed)
    assert passed(checks), "\n".join(f"{c.name}: {c.verdict} {c.message}" for c in checks)
    assert passed(judge_mixed(mixed, baseline=mixed))
    assert 3.5 < mixed.duration_s < 7

    batch = res["batch"]
    assert isinstance(batch, BatchResult) and batch.status == "ok"
    assert len((r.out_dir / "pids").read_text().splitlines()) == 8
    assert batch.makespan_s > 0.8 * batch.lower_bound_s > 0

    lat = res["latency"]
    assert isinstance(lat, LatencyResult) and lat.status == "ok"
    assert lat.wake is not None and lat.wake.count > 20
    print(f"\nguest: mixed {mixed.duration_s:.2f} s, batch makespan {batch.makespan_s:.2f} s "
          f"(bound {batch.lower_bound_s:.2f} s), latency p50/p99/max {lat.wake.p50_ms}/"
          f"{lat.wake.p99_ms}/{lat.wake.max_ms} ms")
    for c in checks:
        print(f"  {c.name}: {c.verdict} {c.message}")
