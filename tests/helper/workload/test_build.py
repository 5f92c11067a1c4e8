"""The probe builds once per source version, atomically, and says clearly when it cannot."""

from __future__ import annotations

import subprocess

import pytest

from schedcp_helper.workload import WorkloadError, probe_binary
from schedcp_helper.workload.build import SOURCE


def test_builds_into_the_cache_named_by_source_hash_and_reuses_it(tmp_path):
    first = probe_binary(tmp_path)
    assert first.parent == tmp_path and first.name.startswith("schedcp-probe-")
    mtime = first.stat().st_mtime_ns
    assert probe_binary(tmp_path) == first
    assert first.stat().st_mtime_ns == mtime  # not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp files left
    usage = subprocess.run([first], capture_output=True, text=True)
    assert usage.returncode == 2 and "mixed|batch|latency" in usage.stderr


def test_probe_source_compiles_warning_free_as_c11(tmp_path):
    proc = subprocess.run(
        ["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", tmp_path / "p",
         SOURCE, "-lm"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_no_compiler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(WorkloadError, match="no C compiler found"):
        probe_binary(tmp_path / "cache")
