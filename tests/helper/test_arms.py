"""``python -m schedcp_helper.arms``: the helper's compiler and loader as a program, which the
demo's latency part drives instead of importing them (its in-guest use is covered by the demo's
VM test, tests/app/test_demo.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ARMS = [sys.executable, "-m", "schedcp_helper.arms"]


def test_compile_writes_our_policy_as_a_bpf_object(tmp_path: Path):
    out = tmp_path / "interactive.bpf.o"
    r = subprocess.run([*ARMS, "compile", "interactive", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[:4] == b"\x7fELF" and data[18] == 247, "not an eBPF ELF object"  # EM_BPF


def test_a_failed_compile_is_one_line_and_exit_1(tmp_path: Path):
    r = subprocess.run([*ARMS, "compile", "no_such_policy", str(tmp_path / "x.o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no_such_policy.bpf.c" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_serve_never_says_ready_for_an_object_it_cannot_open(tmp_path: Path):
    bad = tmp_path / "garbage.bpf.o"
    bad.write_bytes(b"not an object")
    r = subprocess.run([*ARMS, "serve", str(bad), "{}"], input="attach\n", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "ready" not in r.stdout, (r.stdout, r.stderr)


def test_bad_usage_prints_the_requests_and_exits_2():
    r = subprocess.run([*ARMS, "attach"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "serve OBJ TUNABLES_JSON" in r.stderr, r.stderr
