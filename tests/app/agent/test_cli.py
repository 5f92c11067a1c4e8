"""`schedcp optimize` end to end on this host: the real helper on the private bus verifies
(VM stage; cached after the first verification in a session) and refuses to deploy for lack of
sched_ext; the command prints each step and exits non-zero with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.vm
def test_optimize_a_batch_command_stops_cleanly_without_sched_ext(stack, tmp_path):
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": stack.address,
           "XDG_DATA_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "schedcp", "optimize", "--goal", "throughput",
                        "--", sys.executable, "-c", "sum(range(2_000_000))"],
                       capture_output=True, text=True, env=env, timeout=300)
    lines = r.stdout.splitlines()
    print(r.stdout)
    assert r.returncode == 1, r.stderr
    # the observation's run is the discarded warm-up (issue #12): candidates get A/B trials
    assert lines[0].startswith("[0] ") and "warm-up run makespan" in lines[0]
    assert lines[1].startswith("[1] ljf "), r.stdout  # batch + throughput: ljf first
    # the sandbox's trial run may refuse a configuration on a loaded host (then the planner
    # moves on); the first one that verifies is refused by the host: no sched_ext
    steps = lines[1:-1]
    assert all(x.startswith(f"[{i}] ") for i, x in enumerate(steps, 1)), r.stdout
    assert all("refused at" in x for x in steps[:-1]), r.stdout
    assert "deploy failed: NoSchedExt" in steps[-1], r.stdout
    assert lines[-1].startswith("stop: stopped: NoSchedExt"), r.stdout
    assert (tmp_path / "schedcp" / "policies.db").is_file()


def test_optimize_needs_exactly_one_target():
    r = subprocess.run([sys.executable, "-m", "schedcp", "optimize"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "--pid PID or -- CMD" in r.stderr
