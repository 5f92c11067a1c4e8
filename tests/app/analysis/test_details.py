"""Tier-2 details: data from the live system, or None with a reason."""

from __future__ import annotations

import os
import subprocess

from schedcp.analysis import details

from .conftest import HOG, wait_children


def test_process_tree_nests_descendants(spawn):
    p = spawn(["sh", "-c", f"{HOG[0]} -c 'import time; time.sleep(30)' & sleep 30 & wait"])
    wait_children(p.pid, 1)
    tree = details.process_tree(p.pid)
    assert tree["pid"] == p.pid and tree["comm"] == "sh"
    assert {c["comm"] for c in tree["children"]} >= {"sleep"}
    assert len(tree["children"]) == 2 and all(c["children"] == [] for c in tree["children"])


def test_process_tree_of_a_missing_pid_is_none():
    p = subprocess.Popen(["true"])
    p.wait()
    assert details.process_tree(p.pid) is None
    assert "process_tree" in details.REASONS


def test_schedstats_sums_threads():
    stats = details.schedstats([os.getpid(), 1])
    run, wait, slices = stats[os.getpid()]
    assert run > 0 and wait >= 0 and slices > 0 and 1 in stats


def test_taskstats_as_root():
    stats = details.taskstats(os.getpid())
    if os.geteuid() != 0:
        assert stats is None, "taskstats needs CAP_NET_ADMIN"
        print("taskstats unavailable:", details.REASONS["taskstats"])
        return
    assert stats is not None, details.REASONS.get("taskstats")
    assert stats["cpu_count"] > 0 and stats["cpu_run_real_total"] > 0
    assert "cpu_delay_total" in stats and stats["delayacct"] in (-1, 0, 1)


def test_perf_stat_counts_or_says_why(spawn):
    hog = spawn(["sleep", "5"])
    stats = details.perf_stat(hog.pid, 0.2)
    if stats is None:
        print("perf_stat unavailable:", details.REASONS["perf_stat"])
        assert details.REASONS["perf_stat"]
    else:
        assert "task-clock" in stats and "context-switches" in stats
        print("perf_stat:", stats)


def test_topology_matches_the_machine():
    topo = details.topology()
    assert topo["cpus"] == os.cpu_count()
    assert 1 <= topo["cores"] <= topo["cpus"]
    assert sorted(c for g in topo["llc_groups"] for c in g) == list(range(os.cpu_count()))
    assert topo["numa"] and isinstance(topo["smt"], bool)
