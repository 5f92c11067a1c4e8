"""Executors on the host: a batch command is judged by its makespan, a running process by
its runqueue wait (through schedcp.analysis)."""

from __future__ import annotations

import subprocess
import sys

from schedcp.agent.executors import BatchExecutor, PidExecutor


def test_batch_executor_measures_makespan_and_profiles_the_run():
    ex = BatchExecutor([sys.executable, "-c", "import time; time.sleep(0.6)"],
                       profile_after_s=0.05)
    prof, base = ex.observe("throughput")
    assert 0.55 < base.makespan_s < 5 and base.source == "makespan"
    assert prof.goal == "throughput" and prof.root_pid > 0 and prof.kind
    again = ex.measure()
    assert 0.55 < again.makespan_s < 5
    assert ex.target_pids == []  # a finished run leaves no pid for a canary to watch
    fail = BatchExecutor([sys.executable, "-c", "raise SystemExit(3)"]).measure()
    assert "exit status 3" in fail.source


def test_pid_executor_measures_runqueue_wait_of_a_running_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        ex = PidExecutor(busy.pid, seconds=0.5)
        prof, base = ex.observe("responsiveness")
        assert prof.root_pid == busy.pid and busy.pid in ex.target_pids
        assert base.runqueue_wait_ms_per_s is not None and base.runqueue_wait_ms_per_s >= 0
        assert base.primary("responsiveness") == base.runqueue_wait_ms_per_s
    finally:
        busy.kill()
        busy.wait()
