"""The catalogue's workloads run their real programs here, parse what those print, and fail
loudly (naming the Debian package) when a program is missing."""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from pathlib import Path

import pytest

from schedcp.workloads import MODULES, BadOutput, ToolMissing, catalogue, run, start
from schedcp.workloads.build import source_tree
from schedcp_common.workload import probe_binary
from tests.conftest import group_alive

ALL = catalogue()


def test_every_module_is_one_workload_that_says_what_it_measures_and_parses():
    assert len(ALL) == len(MODULES) >= 11
    kinds = {w.kind for w in ALL.values()}
    assert kinds == {"latency", "load", "batch", "build"}
    assert sum(w.kind == "batch" for w in ALL.values()) >= 4
    for mod in MODULES:
        w = importlib.import_module(f"schedcp.workloads.{mod}").WORKLOAD
        assert len(w.measures) > 20 and len(w.parsed_from) > 10, w.name


@pytest.mark.parametrize("name", [n for n, w in ALL.items() if w.tools])
def test_a_missing_program_fails_loudly_with_its_package(name, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing is installed here
    w = ALL[name]
    with pytest.raises(ToolMissing, match=f"apt-get install {w.tools[0][1]}"):
        if w.kind == "batch":
            w.run_batch(2, tmp_path / "w")
        else:
            run(w, 1, 0.2, tmp_path / "w")


def _ready(w):
    if w.name == "frames":
        return dataclasses.replace(w, probe=str(probe_binary()))
    if w.name == "build":
        return dataclasses.replace(w, source=str(source_tree()))
    return w


@pytest.mark.parametrize("name,keys", [
    ("cyclictest", {"samples", "p50_ms", "p99_ms", "max_ms"}),
    ("frames", {"fps", "miss_ratio", "frames", "p99_ms"}),
    ("hackbench", {"time_s"}),
    ("perf-pipe", {"time_s", "usecs_per_op"}),
    ("perf-messaging", {"time_s"}),
    ("stress-cpu", {"bogo_ops", "bogo_ops_per_s"}),
])
def test_latency_and_load_tools_run_and_parse(name, keys, tmp_path):
    res = run(_ready(ALL[name]), 1, 0.5, tmp_path)
    assert keys <= res.keys(), res
    assert all(res[k] > 0 for k in keys if k not in ("miss_ratio",)), res
    if name == "cyclictest":
        assert res["samples"] >= 90 and res["p50_ms"] <= res["p99_ms"] <= res["max_ms"]
    if name == "frames":
        assert 0 <= res["miss_ratio"] < 1 and 10 < res["fps"] <= 63  # 60 Hz over a measured ~1 s


def test_the_build_compiles_libbpf_from_the_kernel_tree(tmp_path):
    src = source_tree()
    res = run(_ready(ALL["build"]), os.cpu_count() or 1, 0, tmp_path, timeout=600)
    assert res["compiled"] >= 20 and res["complete"] == 1, res
    assert not list(src.rglob("*.o")), "the source tree must stay untouched (read-only in VMs)"


@pytest.mark.parametrize("name", [n for n, w in ALL.items() if w.kind == "batch"])
def test_batches_know_jobs_by_birth_order_and_report_their_bound(name, tmp_path):
    w = dataclasses.replace(ALL[name], unit_scale=0.05)
    seen: list[tuple[int, int]] = []
    res = w.run_batch(2, tmp_path, on_forked=seen.extend)
    assert [u for _, u in seen] == w.units() and len({p for p, _ in seen}) == 40
    assert max(w.units()) == w.units()[-1] >= sum(w.units()[:-1]) / 2  # the long tail
    # the bound is exact CPU time (wait4's rusage less the start-up read from schedstat), so
    # no two CPUs can finish the jobs faster; the slack is timer and wake-up granularity
    assert res["makespan_s"] >= 0.95 * res["lower_bound_s"] > 0, res
    assert res["long_cpu_s"] <= res["total_cpu_s"]


def test_garbage_output_is_an_error_not_a_number(tmp_path):
    for name in ("hackbench", "perf-pipe", "perf-messaging", "stress-cpu", "build"):
        with pytest.raises(BadOutput):
            ALL[name].parse("Segmentation fault\n", tmp_path)
    with pytest.raises(BadOutput, match="cyclictest"):
        ALL["cyclictest"].parse("", tmp_path)  # no JSON report written
    with pytest.raises(BadOutput, match="frames"):
        ALL["frames"].parse("", Path(tmp_path))


def test_a_workload_over_its_time_dies_with_its_children(tmp_path):
    """perf forks its two pipe ends: killing only perf would leave them holding our pipes."""
    running = start(dataclasses.replace(ALL["perf-pipe"], loops_per_second=10**7), 1, 100,
                    tmp_path)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="ran over"):
        running.finish(timeout=1)
    assert time.monotonic() - t0 < 10
    deadline = time.monotonic() + 10  # killed children are reaped in a moment
    while time.monotonic() < deadline:
        if not group_alive(running.proc.pid):
            return  # nothing of its process group is left
        time.sleep(0.1)
    pytest.fail("the workload's children outlived it")
