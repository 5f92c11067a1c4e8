"""`schedcp vm` as a user runs it: a real process, real signals, a real guest."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import qemu_processes


def schedcp(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "schedcp", *args], capture_output=True,
                          text=True, timeout=180, **kw)


def start(spawn, *args: str, cwd: Path, foreground: bool = True) -> subprocess.Popen:
    return spawn([sys.executable, "-m", "schedcp", *args], cwd=cwd, foreground=foreground,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, word: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if word in line:
            return
        if not line and proc.poll() is not None:
            break
    err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
    pytest.fail(f"guest never printed {word!r} (exit {proc.poll()}): {err[-2000:]}")


def wait_gone(pids: list[int], limit: float = 10) -> bool:
    """Gone, or a zombie: pytest is a child subreaper (tests/conftest.py), so a guest whose
    parent was killed comes back to it to be reaped."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _gone(pid: int) -> bool:
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return False
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    except psutil.NoSuchProcess:
        pass
    return True


@pytest.mark.vm
def test_vm_command_prints_state_and_returns_the_exit_status(vm_kit, tmp_path):
    r = schedcp("vm", "--", "cat", "/sys/kernel/sched_ext/state", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "disabled\n"), r.stderr
    r = schedcp("vm", "--timeout", "120", "--", "sh -c 'echo out > f; exit 3'", cwd=tmp_path)
    assert r.returncode == 3
    assert (tmp_path / "f").read_text() == "out\n"


def _interrupt(proc: subprocess.Popen, sig: int) -> float:
    t = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(30) == 130
    return time.monotonic() - t


@pytest.mark.vm
@pytest.mark.parametrize(("sig", "foreground"), [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c", "sigterm-in-a-background-job"])
def test_an_interrupt_tears_the_guest_down(vm_kit, tmp_path, spawn, sig, foreground):
    """Ctrl-C as at a terminal; SIGTERM for a job a non-interactive shell started with ``&`` (as
    CI may start the suite): it inherits SIGINT ignored, so the terminal's Ctrl-C is not for it,
    but SIGTERM still tears it down."""
    proc = start(spawn, "vm", "--", "echo ready; sleep 600", cwd=tmp_path, foreground=foreground)
    wait_for_line(proc, "ready")
    guests = qemu_processes(parent=proc.pid)
    assert guests
    print(f"{sig.name} → exit in {_interrupt(proc, sig):.2f} s")
    assert "interrupted" in proc.stderr.read()
    assert wait_gone(guests)


@pytest.mark.vm
def test_guest_dies_with_a_killed_parent(vm_kit, tmp_path, spawn):
    proc = start(spawn, "vm", "--", "echo ready; sleep 600", cwd=tmp_path)
    wait_for_line(proc, "ready")
    guests = qemu_processes(parent=proc.pid)
    assert guests
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    assert wait_gone(guests)  # PR_SET_PDEATHSIG: no orphaned qemu


def test_usage_errors_are_one_clear_line(tmp_path):
    r = schedcp("vm", "--kernel", str(tmp_path / "missing"), "--", "true")
    assert r.returncode == 2
    assert r.stderr.strip() == f"schedcp vm: error: kernel image {tmp_path}/missing does not exist"
    junk = tmp_path / "bzImage"
    junk.write_bytes(os.urandom(8192))
    r = schedcp("vm", "--kernel", str(junk), "--", "true")
    assert r.returncode == 2 and "not an x86 bzImage" in r.stderr
    r = schedcp("vm")
    assert r.returncode == 2 and "no command given" in r.stderr
    r = schedcp("vm", "--env", "1BAD=x", "--", "true")
    assert r.returncode == 2 and "--env wants KEY=VALUE" in r.stderr
    r = schedcp("vm", "--out", str(tmp_path / "nodir"), "--", "true")
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_vm_kit_prints_a_verified_kit(vm_kit):
    r = schedcp("vm-kit")
    assert r.returncode == 0
    assert Path(r.stdout.strip()) == vm_kit.root


def test_virtual_time_option_reaches_the_guest_config(vm_kit, tmp_path):
    from schedcp.cli.main import build_parser
    from schedcp.cli.vm import _config

    args = build_parser().parse_args(["vm", "--virtual-time", "--cpus", "1", "--out",
                                      str(tmp_path), "--", "true"])
    cfg = _config(args)
    assert cfg.virtual_time and cfg.cpus == 1
    assert not _config(build_parser().parse_args(["vm", "--", "true"])).virtual_time
