"""A batch's jobs, recognised across runs by their place in the tree, with their CPU time."""

from __future__ import annotations

import subprocess
import sys

from schedcp.analysis.jobs import JobTracker, cpu_seconds

# a parent forks three children (in order): short, long, short; one more job is exec'd twice
BATCH = """
import os, subprocess, sys, time
def burn(s):
    end = time.process_time() + s
    while time.process_time() < end: pass
kids = []
for s in (0.05, 0.9, 0.05):
    pid = os.fork()
    if pid == 0:
        burn(s); os._exit(0)
    kids.append(pid)
for pid in kids: os.waitpid(pid, 0)
for _ in range(2):
    subprocess.run([sys.executable, "-c", "pass"])
"""


def run_once(seen: list[dict[int, str]]) -> dict[str, float]:
    tracker = JobTracker(on_jobs=seen.append).open()
    p = subprocess.Popen([sys.executable, "-c", BATCH])
    tracker.follow(p.pid)
    p.wait()
    return tracker.stop()


def test_jobs_keep_their_keys_across_runs_and_the_long_one_shows():
    first_seen: list[dict[int, str]] = []
    first = run_once(first_seen)
    second = run_once([])
    forked = [k for k in first if k.count("/") == 1 and k.startswith("0/")]
    execed = [k for k in first if k.startswith("x")]
    assert len(forked) >= 3 and len(execed) == 2, first  # each exec'd job its own key
    assert set(first) == set(second)  # the same batch gives its jobs the same keys
    assert first["0/1"] > 0.4 and second["0/1"] > 0.4  # the long one, both times
    assert first["0/0"] < 0.3 and first["0/2"] < 0.3
    reported = {key for burst in first_seen for key in burst.values()}
    assert {"0/0", "0/1", "0/2"} <= reported  # jobs were announced as they appeared


def test_cpu_seconds_of_a_gone_process_is_none():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert cpu_seconds(p.pid) is None
    assert cpu_seconds(1) is not None
