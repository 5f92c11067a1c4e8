"""As root, qemu runs as ``nobody`` with no capabilities; results still come back, and the
guest can write nothing on the host but its out folder."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from schedcp_common.vm import Outcome, kit_config, run
from schedcp_common.vm.guest import QemuUser, qemu_user
from tests.conftest import qemu_processes

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged drop is root's path "
                               "(CI runs as root)")
NOBODY = pwd.getpwnam("nobody")


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


@root_only
def test_the_child_drops_root_for_good_and_keeps_the_parent_death_signal():
    """PR_SET_PDEATHSIG is cleared by a uid change: it must be set after the drop."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    assert python
    probe = ("import ctypes; s = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(s)); "
             "print(s.value); print(open('/proc/self/status').read())")
    user = qemu_user("tcg")
    assert user is not None and (user.uid, user.gid, user.groups) == (NOBODY.pw_uid,
                                                                      NOBODY.pw_gid, ())
    r = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd="/",
                       preexec_fn=user.child_setup(os.getpid()))
    assert r.returncode == 0, r.stderr
    pdeathsig, status = r.stdout.split("\n", 1)
    assert int(pdeathsig) == 9  # SIGKILL
    fields = {k: v.strip() for k, _, v in (ln.partition(":") for ln in status.splitlines())}
    assert fields["Uid"].split() == [str(NOBODY.pw_uid)] * 4
    assert fields["Gid"].split() == [str(NOBODY.pw_gid)] * 4
    assert fields["Groups"] == ""
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0
    assert fields["NoNewPrivs"] == "1"


def test_kvm_keeps_only_the_device_group():
    user = QemuUser(1, 1)
    assert user.groups == ()
    if os.geteuid() == 0 and os.path.exists("/dev/kvm"):
        kvm = qemu_user("kvm")
        assert kvm is not None and kvm.groups == (os.stat("/dev/kvm").st_gid,)


@pytest.mark.vm
@root_only
def test_qemu_runs_unprivileged_and_results_still_come_back(vm_kit, tmp_path):
    """tmp_path's parents are 0700 root: qemu reaches the kit, initrd and out folder only
    through the descriptors it is given. Before the drop, qemu as root let the guest rewrite a
    host file in the out folder, plant files in root's folders and make device nodes."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "input.txt").write_text("from-host\n")  # root's, 0644: the guest may read it only
    (out / "sub").mkdir()  # root's, 0755
    escape = f"schedcp-escape-{uuid.uuid4().hex}"
    script = (
        "cat input.txt\necho ready\n"
        "i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done\n"
        "echo from-guest > result.txt\n"
        "echo tampered > input.txt 2>/dev/null && echo WROTE-INPUT\n"
        "echo x > sub/planted 2>/dev/null && echo WROTE-SUB\n"
        "mknod mem c 1 1 2>/dev/null && echo MADE-DEVICE\n"
        "mkdir -p /x && mount -t 9p -o trans=virtio,version=9p2000.L hostroot /x "
        f"&& echo x > /x/tmp/{escape} 2>/dev/null && echo WROTE-ROOT\n"
        "echo done\n"
    )
    chunks: list[bytes] = []
    box: dict = {}
    cfg = kit_config(vm_kit, out_dir=out, timeout=300)
    t = threading.Thread(target=lambda: box.setdefault("r", run(script, cfg, chunks.append)))
    t.start()
    try:
        deadline = time.monotonic() + 240
        while b"ready" not in b"".join(chunks) and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        pids = qemu_processes(parent=os.getpid())
        assert len(pids) == 1, b"".join(chunks)[-2000:]
        st = _status(pids[0])
        assert os.stat(out).st_uid == NOBODY.pw_uid  # lent for the run
    finally:
        (out / "go").touch()
        t.join(300)
    assert st["Uid"].split() == [str(NOBODY.pw_uid)] * 4
    assert st["Gid"].split() == [str(NOBODY.pw_gid)] * 4
    assert st["Groups"] == ""
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert st["NoNewPrivs"] == "1"
    r, output = box["r"], b"".join(chunks).decode(errors="replace")
    assert r.outcome is Outcome.EXITED and r.returncode == 0, output
    assert output.splitlines()[0] == "from-host" and "done" in output
    assert (out / "result.txt").read_text() == "from-guest\n"
    assert (out / "result.txt").stat().st_uid == NOBODY.pw_uid  # no CAP_CHOWN needed
    for mark in ("WROTE-INPUT", "WROTE-SUB", "MADE-DEVICE", "WROTE-ROOT"):
        assert mark not in output
    assert (out / "input.txt").read_text() == "from-host\n"
    assert not (out / "sub" / "planted").exists()
    mem = out / "mem"
    assert not (os.path.lexists(mem) and stat.S_ISCHR(mem.lstat().st_mode))
    assert not (Path("/tmp") / escape).exists()
    assert os.stat(out).st_uid == 0  # given back to its owner
