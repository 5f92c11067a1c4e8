"""measure(): runqueue wait under contention, ~0 for a sleeper."""

from __future__ import annotations

import os
import sys

from schedcp.analysis import measure, measure_command

from .conftest import HOG


def test_runqueue_wait_of_a_process_competing_with_hogs(spawn):
    target = spawn(HOG)
    for _ in range(os.cpu_count()):  # more runnable tasks than CPUs
        spawn(HOG)
    m = measure([target.pid], 1.0)
    print(m)
    assert m.source == "schedstat" and 0.9 < m.seconds < 1.5
    assert m.runqueue_wait_ms_per_s > 100  # waited a good part of the second


def test_runqueue_wait_of_an_idle_sleeper_is_about_zero(spawn):
    sleeper = spawn(["sleep", "30"])
    m = measure([sleeper.pid], 0.5)
    print(m)
    assert m.runqueue_wait_ms_per_s is not None and m.runqueue_wait_ms_per_s < 1.0


def test_measure_command_gives_makespan():
    m = measure_command([sys.executable, "-c", "sum(range(3_000_000))"])
    print(m)
    assert 0.02 < m.makespan_s < 5 and m.runqueue_wait_ms_per_s >= 0
