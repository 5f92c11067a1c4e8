"""The probe builds once per source version, atomically, and says clearly when it cannot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from schedcp_common.workload import WorkloadError, probe_binary
from schedcp_common.workload.build import SOURCE, find_compiler


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


def test_the_helpers_own_clang_builds_the_probe(tmp_path, monkeypatch):
    """The installed helper may have no gcc: its package's clang-19 (which pulls in libc6-dev
    and libgcc's start files) must be enough."""
    from schedcp_helper.verifier.compile import find_clang

    clang = find_clang()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / Path(clang).name).symlink_to(clang)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CC", raising=False)
    assert Path(find_compiler()).name == Path(clang).name
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin")  # clang finds ld there, not cc first
    monkeypatch.setenv("CC", clang)
    probe = probe_binary(tmp_path / "cache")
    usage = subprocess.run([probe], capture_output=True, text=True)
    assert usage.returncode == 2 and "mixed|batch|latency" in usage.stderr


def test_an_unwritable_cache_is_a_workload_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(WorkloadError, match="SCHEDCP_WORKLOAD_CACHE"):
        probe_binary(ro / "sub") if os.geteuid() else probe_binary(Path("/proc/schedcp"))
