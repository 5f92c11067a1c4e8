"""Workload identity: the same command always gets the same key (whatever its run length or
the interpreter's spelling); different scripts, sub-commands or shapes do not share one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from schedcp.agent.executors import BatchExecutor
from schedcp.analysis.identity import interpreter, resolve_argv, shape, workload_key

PY = "/usr/bin/python3"


def key(argv: list[str], cwd: str | None = None) -> str:
    return workload_key("throughput", resolve_argv(argv, cwd), cwd=cwd)


def test_interpreter_spellings_and_versions_share_a_key(tmp_path: Path):
    script = tmp_path / "crunch.py"
    script.write_text("pass\n")
    a = key([PY, str(script), "--n", "5"])
    assert a == key([os.path.realpath(PY), str(script), "--n", "7"])  # python3.11, other value
    assert a == key([PY, "crunch.py", "--n", "9"], cwd=str(tmp_path))  # relative script
    assert a.startswith("throughput:python:crunch.py:")
    assert interpreter("/usr/bin/python3.11") == "python" and interpreter("/bin/make") is None


def test_different_scripts_subcommands_and_shapes_do_not_share(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "run.py").write_text("pass\n")
    assert key([PY, str(tmp_path / "a/run.py")]) != key([PY, str(tmp_path / "b/run.py")])
    assert key(["/bin/true", "batch", "--tasks", "40"]) == key(["/bin/true", "batch",
                                                                "--tasks", "20"])
    assert key(["/bin/true", "batch"]) != key(["/bin/true", "latency"])
    assert key([PY, "-c", "print(1)"]) != key([PY, "-c", "print(2)"])
    assert key([PY, "-m", "http.server"]) != key([PY, "-m", "json.tool"])
    assert shape(["-j8", "--out=x.o", "all", "3", "./x.c"]) == ["-j", "--out", "all", "N", "P"]


def test_same_command_same_key_across_run_lengths(tmp_path: Path):
    """A run too short to profile (the fallback path) and one long enough to be profiled
    and classified get the same key: the command, not the sampled process, is the identity."""
    script = tmp_path / "job.py"
    script.write_text("import sys, time\nend = time.time() + float(sys.argv[1])\n"
                      "while time.time() < end: pass\n")
    short = BatchExecutor([sys.executable, str(script), "0.01"], profile_after_s=0.2)
    long = BatchExecutor([sys.executable, str(script), "1.5"], profile_after_s=0.05)
    p_short, _ = short.observe("throughput")
    p_long, _ = long.observe("throughput")
    assert p_long.root_pid and p_long.features  # really profiled
    assert p_short.key == p_long.key
    assert ":python:job.py:" in p_short.key
