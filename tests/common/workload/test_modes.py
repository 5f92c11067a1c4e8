"""Each mode's JSON on the host, with tiny sizes; the batch hand-off (pids file, barrier)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from schedcp_common.workload import Batch, Latency, Mixed, invocation, run_host
from schedcp_common.workload.results import find_document


def test_mixed_reports_both_phases_with_every_task_class(probe, tmp_path):
    out = tmp_path / "m.json"
    r = run_host(Mixed(light_s=0.2, overload_s=0.4, out=str(out)), timeout=30, binary=probe)
    assert r.status == "ok" and r.ncpu == os.cpu_count()
    assert [p.name for p in r.phases] == ["light", "overload"]
    light, over = r.phases
    assert light.runnable < r.ncpu + 1 < over.runnable  # light: fewer than CPUs, then more
    assert {t.cls for t in light.tasks} == {"hog", "interactive"}
    assert {t.cls for t in over.tasks} == {"hog", "niced", "short", "interactive"}
    for p in r.phases:
        assert 0.1 < p.duration_s <= p.planned_s + 0.05
        assert p.throughput_iters == sum(t.iters for t in p.tasks) > 0
        for t in p.tasks:
            assert t.finished and t.pid > 0 and t.cpu_s > 0 and t.wall_s > 0
            assert t.max_gap_ms > 0
    assert {t.nice for t in over.of_class("niced")} == {10}
    wake = over.interactive.wake
    assert wake.count > 10 and 0 <= wake.p50_ms <= wake.p99_ms <= wake.max_ms
    short = over.of_class("short")[0]
    assert short.completed == over.short_completed > 0
    assert short.turnaround.count == short.completed
    assert out.read_text().startswith('{"mode":"mixed"')  # --out gets the same document


def test_latency_reports_the_periodic_task_and_hogs(probe):
    r = run_host(Latency(duration_s=0.3, hogs=3), timeout=30, binary=probe)
    assert r.status == "ok" and r.params["period_ms"] == 5
    assert r.wake.count > 20 and r.wake.max_ms >= r.wake.p99_ms
    assert [t.cls for t in r.tasks] == ["hog"] * 3 + ["interactive"]


def test_batch_reports_tasks_makespan_and_lower_bound(probe):
    r = run_host(Batch(tasks=8, long_factor=4, short_units=1, unit_scale=0.1), timeout=60,
                 binary=probe)
    assert r.status == "ok"
    assert set(r.calibration_unit_s) == {"checksum", "matmul", "sort", "compress"}
    assert [t.job for t in r.tasks[:4]] == ["checksum", "matmul", "sort", "compress"]
    assert [t.long for t in r.tasks] == [False] * 7 + [True]
    assert r.tasks[-1].units == 4 * r.tasks[0].units
    total = sum(t.est_s for t in r.tasks)
    longest = max(t.est_s for t in r.tasks)
    assert r.lower_bound_s == pytest.approx(max(longest, total / r.ncpu), abs=1e-5)
    assert r.makespan_s == pytest.approx(max(t.end_s for t in r.tasks), abs=1e-5)
    assert r.ratio == pytest.approx(r.makespan_s / r.lower_bound_s, rel=1e-3)
    for t in r.tasks:
        assert t.finished and 0 <= t.start_s < t.end_s and t.runtime_s > 0 and t.cpu_s > 0


def test_pids_file_is_written_before_the_barrier_releases_the_tasks(probe, tmp_path):
    pids_file, fifo = tmp_path / "pids", tmp_path / "go"
    os.mkfifo(fifo)
    inv = invocation(Batch(tasks=6, long_factor=3, short_units=1, unit_scale=0.1,
                           pids_file=str(pids_file), start_barrier=str(fifo)), probe)
    proc = subprocess.Popen(inv.argv, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not pids_file.exists():
            assert time.monotonic() < deadline, "no pids file"
            time.sleep(0.01)
        lines = [ln.split() for ln in pids_file.read_text().splitlines()]
        assert [int(u) for _, u in lines] == [1] * 5 + [3]
        time.sleep(0.2)
        for pid, _ in lines:  # forked and waiting, not working
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            assert stat[0] == "S" and int(stat[1]) == proc.pid
        with open(fifo, "w") as f:
            f.write("go\n")
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    r = inv.parse(out)
    assert r.status == "ok"
    assert [(t.pid, t.units) for t in r.tasks] == [(int(p), int(u)) for p, u in lines]


def test_result_is_found_among_other_console_lines(probe):
    text = 'boot noise\n{"mode":"latency","status":"timeout","elapsed_s":1.0}\n[ 3.1] kernel\n'
    assert find_document(text, "latency")["status"] == "timeout"
    assert invocation(Latency(), probe).parse(text).status == "timeout"
