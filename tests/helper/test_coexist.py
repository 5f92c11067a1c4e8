"""coexist: naming the attached scheduler's owner and the desktop's other tuners (issue 17).

The owner comes from the process holding the struct_ops link; this host has no sched_ext, so
those tests read a /proc-shaped folder laid out as Linux 6.12 shows it (``fd/N`` →
``anon_inode:bpf_link``, ``fdinfo/N`` with ``link_type:\tstruct_ops``, ``stat``, ``cgroup``).
The tuner survey runs against real processes. The micro-VM test checks the same with a real
scheduler attached (tests/helper/service/test_vm_coexist.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from schedcp_helper.coexist import (
    Coexistence,
    LoaderView,
    Roots,
    identify,
    processes,
    struct_ops_holders,
    tuners,
)
from schedcp_helper.scxstate import ScxState

ON = ScxState(True, "enabled", "lavd")


def fake_proc(root: Path, pid: int, comm: str, ppid: int, cgroup: str = "0::/user.slice\n",
              link: bool = False) -> None:
    d = root / str(pid)
    (d / "fd").mkdir(parents=True)
    (d / "fdinfo").mkdir()
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 0 0\n")
    (d / "cgroup").write_text(cgroup)
    os.symlink("/dev/null", d / "fd" / "0")
    if link:
        os.symlink("anon_inode:bpf_link", d / "fd" / "7")
        (d / "fdinfo" / "7").write_text("pos:\t0\nflags:\t02000000\nmnt_id:\t15\nino:\t1057\n"
                                        "link_type:\tstruct_ops\nlink_id:\t3\n")


def test_scx_loaders_child_holding_the_link_is_scx_loaders_with_its_mode(tmp_path):
    fake_proc(tmp_path, 100, "scx_loader", 1, "0::/system.slice/scx_loader.service\n")
    fake_proc(tmp_path, 200, "scx_lavd", 100, "0::/system.slice/scx_loader.service\n",
              link=True)
    fake_proc(tmp_path, 300, "bash", 1)
    assert struct_ops_holders(tmp_path) == [200]
    att = identify(ON, loader=LoaderView("scx_lavd", 1), proc=tmp_path, own_pid=42)
    assert (att.owner, att.name, att.mode, att.pid) == ("scx_loader", "scx_lavd", "Gaming", 200)
    assert att.line == "scx_lavd via scx_loader (Gaming)" and att.foreign
    # started with arguments: scx_loader reports no mode then (CurrentSchedulerArgs set)
    args = identify(ON, loader=LoaderView("scx_lavd", 0, ("--performance",)), proc=tmp_path,
                    own_pid=42)
    assert args.line == "scx_lavd via scx_loader"
    # scx_loader not answering on the bus: still known by its process tree
    assert identify(ON, proc=tmp_path, own_pid=42).line == "scx_lavd via scx_loader"


def test_ours_run_by_scx_loader_is_ours_via_scx_loader_and_not_foreign(tmp_path):
    """A packaged scheduler scx_loader runs for us: the link holder is scx_loader's child, yet
    it is ours (no take-over needed to replace it); once scx_loader runs another, it is not."""
    fake_proc(tmp_path, 100, "scx_loader", 1, "0::/system.slice/scx_loader.service\n")
    fake_proc(tmp_path, 200, "scx_lavd", 100, "0::/system.slice/scx_loader.service\n",
              link=True)
    view = LoaderView("scx_lavd", 0, ("--performance",))
    att = identify(ON, loader=view, proc=tmp_path, own_pid=42, ours_via_loader="scx_lavd")
    assert (att.owner, att.via, att.pid, att.foreign) == ("schedcp", "scx_loader", 200, False)
    assert att.line == "scx_lavd via scx_loader for SchedCP"
    other = identify(ON, loader=view, proc=tmp_path, own_pid=42, ours_via_loader="scx_flash")
    assert (other.owner, other.via, other.foreign) == ("scx_loader", "", True)
    # without a link holder (no /proc view): by scx_loader's account and our ops
    empty = tmp_path / "empty"
    empty.mkdir()
    bare = identify(ON, ours_ops="lavd", loader=view, proc=empty, ours_via_loader="scx_lavd")
    assert (bare.owner, bare.via) == ("schedcp", "scx_loader")

def test_scx_service_owner_is_known_by_its_cgroup(tmp_path):
    fake_proc(tmp_path, 200, "scx_rusty", 1, "0::/system.slice/scx.service\n", link=True)
    att = identify(ScxState(True, "enabled", "rusty"), proc=tmp_path, own_pid=42)
    assert (att.owner, att.line) == ("scx.service", "scx_rusty via scx.service")


def test_a_named_process_ours_and_nobody(tmp_path):
    fake_proc(tmp_path, 200, "my\nsched)(x", 1, link=True)  # hostile comm: cleaned
    att = identify(ScxState(True, "enabled", "mine"), proc=tmp_path, own_pid=42)
    assert att.owner == "process" and att.pid == 200
    assert "\n" not in att.line and att.line.startswith("mine via my?sched")
    ours = identify(ScxState(True, "enabled", "vtime"), ours_ops="vtime", proc=tmp_path,
                    own_pid=200)
    assert ours.owner == "schedcp" and not ours.foreign
    assert ours.line == "vtime via SchedCP"
    empty = tmp_path / "empty"
    empty.mkdir()
    unknown = identify(ScxState(True, "enabled", "mystery"), proc=empty)
    assert (unknown.owner, unknown.line) == ("unknown", "mystery via an unknown owner")
    # without a link holder: ours by name, scx_loader by its own account
    assert identify(ScxState(True, "enabled", "vtime"), ours_ops="vtime",
                    proc=empty).owner == "schedcp"
    assert identify(ON, loader=LoaderView("scx_lavd", 2), proc=empty).line == \
        "scx_lavd via scx_loader (PowerSave)"
    assert identify(ON, loader=LoaderView("scx_bpfland", 2), proc=empty).owner == "unknown"
    assert identify(ScxState(True, "disabled", ""), proc=empty).line == \
        "kernel default scheduler"
    assert identify(ScxState(False), proc=empty).line == "no sched_ext in this kernel"


def test_tuners_are_found_running_and_installed(tmp_path):
    """A real process named ananicy-cpp is active; a unit file makes falcond present."""
    fs = tmp_path / "fs"
    (fs / "usr/lib/systemd/system").mkdir(parents=True)
    (fs / "usr/lib/systemd/system/falcond.service").write_text("[Service]\n")
    exe = tmp_path / "ananicy-cpp"
    shutil.copy(shutil.which("sleep"), exe)
    p = subprocess.Popen([str(exe), "30"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            procs = processes(Path("/proc"))
            if any(x.pid == p.pid and x.comm == "ananicy-cpp" for x in procs):
                break
            time.sleep(0.02)
        present, active = tuners(Roots(fs=fs), procs, {"net.hadess.PowerProfiles"})
    finally:
        p.kill()
        p.wait()
    assert "ananicy-cpp" in active and "ananicy-cpp" in present
    assert "falcond" in present and "falcond" not in active
    assert "power-profiles-daemon" in active  # its name is owned on the system bus
    assert "system76-scheduler" not in present
    present, active = tuners(Roots(fs=fs), processes(Path("/proc")))
    assert "ananicy-cpp" not in active


def test_survey_line_names_the_owner_and_the_other_active_tuners(tmp_path):
    sysfs = tmp_path / "sched_ext"
    (sysfs / "root").mkdir(parents=True)
    (sysfs / "state").write_text("enabled\n")
    (sysfs / "root" / "ops").write_text("lavd\n")
    empty = tmp_path / "proc"
    empty.mkdir()
    sv = Coexistence(Roots(sysfs=sysfs, proc=empty, fs=tmp_path)).survey(
        loader=LoaderView("scx_lavd", 1), bus_names={"org.scx.Loader",
                                                     "net.hadess.PowerProfiles"})
    assert sv.line == ("scx_lavd via scx_loader (Gaming); also active: "
                       "power-profiles-daemon")
    assert sv.to_dict()["attached"]["owner"] == "scx_loader"


def test_the_owner_is_looked_up_again_only_when_something_changed(tmp_path, monkeypatch):
    """Status is polled every few seconds: the fd scan runs once per attached scheduler."""
    from schedcp_helper import coexist

    scans = []
    real = coexist.struct_ops_holders
    monkeypatch.setattr(coexist, "struct_ops_holders", lambda proc: scans.append(1) or real(proc))
    sysfs = tmp_path / "sched_ext"
    (sysfs / "root").mkdir(parents=True)
    (sysfs / "state").write_text("enabled\n")
    (sysfs / "root" / "ops").write_text("lavd\n")
    (sysfs / "enable_seq").write_text("3\n")
    proc = tmp_path / "proc"
    fake_proc(proc, 200, "scx_lavd", 1, "0::/system.slice/scx.service\n", link=True)
    c = Coexistence(Roots(sysfs=sysfs, proc=proc, fs=tmp_path))
    for _ in range(5):
        assert c.attached().owner == "scx.service"
    assert len(scans) == 1
    (sysfs / "enable_seq").write_text("4\n")  # detached and attached again: look again
    c.attached()
    assert len(scans) == 2
    shutil.rmtree(proc / "200")  # its process is gone: look again
    assert c.attached().owner == "unknown" and len(scans) == 3


def test_a_power_profile_name_is_put_down_to_the_daemon_that_owns_it(tmp_path):
    """power-profiles-daemon (since 0.20) and tuned-ppd both own net.hadess.PowerProfiles and
    org.freedesktop.UPower.PowerProfiles: the owner's process name decides which one runs; an
    owner the bus does not show counts as the first that may own the name."""
    empty = Roots(fs=tmp_path)
    names = {"net.hadess.PowerProfiles", "org.freedesktop.UPower.PowerProfiles"}
    _, active = tuners(empty, [], dict.fromkeys(names, "tuned-ppd"))
    assert "tuned-ppd" in active and "power-profiles-daemon" not in active
    _, active = tuners(empty, [], dict.fromkeys(names, "power-profiles-"))
    assert "power-profiles-daemon" in active and "tuned-ppd" not in active
    _, active = tuners(empty, [], names)  # owners unseen
    assert "power-profiles-daemon" in active and "tuned-ppd" not in active
    _, active = tuners(empty, [], {"org.freedesktop.UPower.PowerProfiles": "someone-else"})
    assert not {"power-profiles-daemon", "tuned-ppd"} & set(active)
