"""`python -m schedcp.workloads run NAME`: one catalogue workload as a command (what
`schedcp optimize -- CMD` and bench/optimize_picks.py run), with its real programs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _run(*args: str, path: str | None = None, cwd: Path | None = None):
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "schedcp.workloads", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def _fake(bindir: Path, name: str, script: str) -> None:
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + script + "\n")
    exe.chmod(0o755)


def test_a_batch_runs_once_and_prints_its_metrics(tmp_path):
    r = _run("run", "batch-sqlite", "--cpus", "2", "--unit-scale", "0.05",
             "--workdir", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert set(m) == {"makespan_s", "lower_bound_s", "vs_bound", "long_cpu_s", "total_cpu_s"}
    assert m["makespan_s"] >= 0.95 * m["lower_bound_s"] > 0 and m["long_cpu_s"] > 0, m


def test_prepare_writes_the_inputs_once_so_runs_fork_only_the_jobs(tmp_path):
    w = tmp_path / "w"
    r = _run("run", "batch-gzip", "--unit-scale", "0.02", "--workdir", str(w), "--prepare")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"prepared": str(w)}
    inputs = {p: p.stat().st_mtime_ns for p in w.glob("in-*.txt")}
    assert len(inputs) == 2  # the short jobs' size and the long job's
    r = _run("run", "batch-gzip", "--unit-scale", "0.02", "--workdir", str(w), "--cpus", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["makespan_s"] > 0
    assert {p: p.stat().st_mtime_ns for p in w.glob("in-*.txt")} == inputs  # not rewritten


def test_a_latency_tool_runs_for_its_seconds(tmp_path):
    r = _run("run", "hackbench", "--cpus", "1", "--seconds", "0.2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["time_s"] > 0


def test_every_build_starts_from_scratch_also_in_a_kept_workdir(tmp_path):
    for _ in range(2):  # the second run must not find the first one's objects
        r = _run("run", "build", "--lib", "subcmd", "--cpus", "2", "--workdir", str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"compiled": 7, "complete": 1.0,
                                        "wall_s": json.loads(r.stdout)["wall_s"]}


def test_a_missing_program_exits_3_naming_its_package(tmp_path):
    # the shell the batch's jobs start in is there; gzip is not
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "seq", "awk"):
        (bindir / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    r = _run("run", "batch-gzip", "--unit-scale", "0.01", path=str(bindir))
    assert r.returncode == 3
    assert "apt-get install gzip" in r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "failed" and "gzip" in out["error"]


def test_a_run_whose_program_fails_exits_1_and_says_why(tmp_path):
    bindir = tmp_path / "bin"
    _fake(bindir, "sqlite3", 'echo "Error: out of memory" >&2; exit 1')
    r = _run("run", "batch-sqlite", "--unit-scale", "0.01",
             path=f"{bindir}:{os.environ['PATH']}")
    assert r.returncode == 1
    assert "exited 1" in r.stderr and "out of memory" in r.stderr
    assert r.stdout.startswith('{"status":"failed"')  # what optimize's --fail-pattern matches


def test_output_that_does_not_parse_is_a_failure_not_a_number(tmp_path):
    bindir = tmp_path / "bin"
    _fake(bindir, "hackbench", "echo 'Segmentation fault'")
    r = _run("run", "hackbench", "--seconds", "0.2", path=f"{bindir}:{os.environ['PATH']}")
    assert r.returncode == 1, r.stdout
    assert "BadOutput" in r.stderr and json.loads(r.stdout)["status"] == "failed"


def test_bad_names_and_options_exit_2(tmp_path):
    r = _run("run", "no-such-workload")
    assert r.returncode == 2 and "known: cyclictest" in r.stderr
    r = _run("run", "hackbench", "--prepare")
    assert r.returncode == 2 and "--prepare is for batches" in r.stderr
    r = _run("run", "build", "--source", str(tmp_path))  # nothing extracted there
    assert r.returncode == 3 and "no extracted source" in r.stderr


def test_list_names_every_workload():
    from schedcp.workloads import catalogue

    r = _run("list")
    assert r.returncode == 0
    assert [line.split()[0] for line in r.stdout.splitlines()] == list(catalogue())
