"""The micro-VM boots a real sched_ext kernel, runs commands and always goes away."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from schedcp_common.vm import GuestConfig, GuestError, Outcome, run
from schedcp_common.vm.guest import (
    QEMU,
    VIRTUAL_TIME_ICOUNT,
    check_bzimage,
    mttcg_safe,
    probe_kvm,
    qemu_argv,
    resolve_modules,
)
from schedcp_common.workload import Latency, invocation, probe_binary
from tests.conftest import qemu_processes

vm = pytest.mark.vm


@vm
def test_guest_has_sched_ext_disabled_and_shares_only_the_output_folder(guest):
    leak = f"/tmp/schedcp-leak-{uuid.uuid4().hex}"
    r = guest(
        "cat /sys/kernel/sched_ext/state\n"
        "uname -r\n"
        "echo from-guest > result.txt\n"
        f"echo should-stay-in-guest > {leak}\n"
        "pwd\n"
    )
    assert r.result.outcome is Outcome.EXITED, r.output
    assert r.result.returncode == 0
    lines = r.output.splitlines()
    assert lines[0] == "disabled"
    assert lines[1].startswith("6.12")
    assert lines[2] == str(r.out_dir)  # the output folder is the cwd, at its host path
    assert (r.out_dir / "result.txt").read_text() == "from-guest\n"
    assert not Path(leak).exists()  # the host root is read-only to the guest


@vm
def test_exit_status_of_a_failing_command_comes_back(guest):
    r = guest("echo SCHEDCP_RC_0000000000000000=0\nfalse || exit 7")
    assert (r.result.outcome, r.result.returncode) == (Outcome.EXITED, 7)
    assert "SCHEDCP_RC_0000000000000000=0" in r.output  # a fake status line is just output


@vm
def test_hung_command_is_killed_at_the_timeout(guest):
    # the timeout counts the boot, which takes ~3 s idle and up to ~20 s on a loaded host
    r = guest("echo started; sleep 600", timeout=40)
    assert (r.result.outcome, r.result.returncode) == (Outcome.TIMEOUT, 124)
    assert "started" in r.output
    assert r.result.seconds < 50
    assert qemu_processes(parent=os.getpid()) == []


@vm
def test_guest_panic_is_reported(guest):
    r = guest("echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger; sleep 60",
              timeout=60)
    assert (r.result.outcome, r.result.returncode) == (Outcome.GUEST_DIED, 255)
    assert "panic" in r.output.lower()
    assert qemu_processes(parent=os.getpid()) == []


@vm
def test_output_streams_while_the_command_runs(guest):
    r = guest("echo first; sleep 4; echo second; echo MYVAR=$MYVAR", env={"MYVAR": "a b'c"})
    assert r.result.returncode == 0
    when = {}
    for t, chunk in r.chunks:
        for word in (b"first", b"second"):
            if word in chunk:
                when.setdefault(word, t)
    assert when[b"second"] - when[b"first"] >= 3  # "first" arrived before the sleep ended
    assert "MYVAR=a b'c" in r.output


def test_missing_and_corrupt_kernel_images_are_refused(tmp_path):
    with pytest.raises(GuestError, match="does not exist"):
        check_bzimage(tmp_path / "nope")
    junk = tmp_path / "bzImage"
    junk.write_bytes(b"\x7fELF" + bytes(4096))
    with pytest.raises(GuestError, match="not an x86 bzImage"):
        run("true", GuestConfig(kernel=junk, out_dir=tmp_path), lambda b: None)
    assert qemu_processes(parent=os.getpid()) == []


def test_multithreaded_tcg_only_without_jump_label(tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text("CONFIG_JUMP_LABEL=y\n")
    assert not mttcg_safe(cfg)
    cfg.write_text("# CONFIG_JUMP_LABEL is not set\n")
    assert mttcg_safe(cfg)
    assert not mttcg_safe(None)


def test_host_kernel_modules_resolve_in_dependency_order(tmp_path):
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz\n"
        "kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz\n"
        "kernel/net/9p/9pnet.ko.xz:\n"
        "kernel/fs/netfs/netfs.ko.xz:\n"
        "kernel/fs/overlayfs/overlay.ko.xz:\n"
        "kernel/sound/snd.ko.xz:\n"
    )
    names = [p.name for p in resolve_modules(tmp_path)]
    assert names == ["9pnet.ko.xz", "9pnet_virtio.ko.xz", "netfs.ko.xz", "9p.ko.xz",
                     "overlay.ko.xz"]
    assert resolve_modules(tmp_path / "absent") == []


def test_the_kvm_probe_waits_for_qemu_not_for_a_timer(spawn):
    """Nested KVM here lets /dev/kvm open and aborts qemu while it resets the machine. The probe
    used to call KVM usable when qemu was still alive after 0.5 s, which on a loaded host it
    often is: the guest then died at boot. Its answer must not depend on the load."""
    idle = probe_kvm()
    for _ in range(2 * (os.cpu_count() or 1)):
        spawn(["sh", "-c", "while :; do :; done"])
    assert [probe_kvm() for _ in range(3)] == [idle] * 3
    if os.access("/dev/kvm", os.W_OK) and not idle:
        # the ground truth: qemu with KVM really fails here (its monitor never answers)
        r = subprocess.run([QEMU, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "64",
                            "-S", "-display", "none", "-nodefaults", "-monitor", "stdio"],
                           input=b"quit\n", capture_output=True, timeout=60)
        assert r.returncode != 0, r.stdout


def test_virtual_time_boots_single_threaded_tcg_with_icount(tmp_path):
    cfg = GuestConfig(kernel=tmp_path / "bzImage", out_dir=tmp_path, virtual_time=True)
    argv, accel = qemu_argv(cfg, tmp_path / "initrd", "t")
    assert accel == "tcg"  # never KVM: icount needs TCG, even where KVM works
    assert argv[argv.index("-accel") + 1] == "tcg,thread=single"
    assert argv[argv.index("-icount") + 1] == VIRTUAL_TIME_ICOUNT
    argv, _ = qemu_argv(GuestConfig(kernel=tmp_path / "bzImage", out_dir=tmp_path),
                        tmp_path / "initrd", "t")
    assert "-icount" not in argv


@vm
def test_virtual_time_repeats_a_latency_measurement(guest):
    """In virtual time the guest clock counts instructions, so host load no longer stretches
    the numbers: repeated runs stay on the guest scheduler's own scale (EEVDF's slice at 1 vCPU
    with 2 hogs, ~2 ms) and most repeat to the microsecond. Not every one: I/O completes in host
    time and shifts a run's phase against the guest tick (seen: 1.987, 1.236, 2.44-2.52 ms).
    Plain TCG on a loaded host gives p99s from ~2 to ~30 ms for the same run."""
    inv = [invocation(Latency(duration_s=1.0, hogs=2, out=f"lat{i}.json"), Path("/tmp/probe"))
           for i in range(3)]
    r = guest(f"set -e\ncp {probe_binary()} /tmp/probe\n"
              + "".join(f"{x.line} > /dev/null\n" for x in inv), timeout=300,
              cpus=1, virtual_time=True)
    assert r.result.returncode == 0, r.output
    wakes = [x.parse((r.out_dir / f"lat{i}.json").read_text()).wake for i, x in enumerate(inv)]
    assert all(w is not None and w.count >= 190 for w in wakes), wakes
    p99 = [w.p99_ms for w in wakes]
    print(f"\nvirtual time, 1 vCPU, 2 hogs: p99 {p99} ms, p50 {[w.p50_ms for w in wakes]} ms")
    assert all(1.0 <= x <= 3.0 for x in p99), p99  # the slice's scale, whatever the host does
    assert max(p99) / min(p99) < 2.0, p99
