"""The installed product on a machine that boots with systemd and has sched_ext.

A Debian 12 root (sysroot.py: systemd, dbus, polkitd, logind, a normal user and an
administrator) boots as its own init in a qemu TCG guest on the kit's sched_ext kernel
(machine.py says why a 9p root with an overlay). In that machine the administrator's unit
(guest/root.sh) installs the built .debs with `apt install ./…deb`; the normal user is logged
in on tty1 by autologin (a local, active logind session) and the login shell runs
guest/session.sh: status (bus activation of the real unit), verify (a shipped policy, a
user-written scheduler and a bad one, with the kernel and dynamic stages in place), a deploy
of new code that polkit asks the administrator's password for (answered by pkttyagent through
guest/polkit_answer.py), a helper restart, a revert that needs no password, kill -9 of the
helper mid-deploy, `schedcp optimize` on a small batch, and the tray. Nothing is started by
hand: the test reads what the machine wrote into its share, as hostile data.

Needs root (chroot, mounts), qemu, debootstrap and the guest kit; network to deb.debian.org
only on a cold layer cache. Wall time is printed at the end of the module fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.system.machine import (
    Machine,
    exit_status,
    prepare_share,
    read_guest_file,
    sections,
)
from tests.system.sysroot import ADMIN_PASSWORD, system_root

from schedcp_common.vm import Kit, KitError, find_kit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GUEST = HERE / "guest"
BOOT_TIMEOUT = 1500  # boot + apt install under TCG, then the session's first line
SESSION_TIMEOUT = 5400
# The whole-system machine costs 25-40 min of TCG per run (apt install of the .debs in the
# guest dominates) and has not yet run green with the fixes merged; `make test-system` runs it.
# Without root, qemu or the kit it fails rather than skips.
pytestmark = [pytest.mark.vm, pytest.mark.skipif(
    os.environ.get("SCHEDCP_SYSTEM_TEST") != "1",
    reason="the systemd test machine takes 25-40 min under TCG: `make test-system` runs it "
    "(SCHEDCP_SYSTEM_TEST=1)")]
CAPS = ("cap_kill cap_setgid cap_setuid cap_sys_admin cap_sys_resource cap_syslog "
        "cap_perfmon cap_bpf")


@dataclass
class SystemRun:
    install: dict[str, str] = field(default_factory=dict)
    session: dict[str, str] = field(default_factory=dict)
    serial: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    finished: bool = False

    def section(self, name: str) -> str:
        if name not in self.session:
            pytest.fail(f"the session never reached {name!r}; it has {list(self.session)}; "
                        f"serial tail:\n{self.serial[-3000:]}", pytrace=False)
        return self.session[name]

    def ok(self, name: str) -> str:
        body = self.section(name)
        assert exit_status(body) == 0, f"{name}:\n{body[-4000:]}"
        return body


def json_of(body: str) -> dict:
    """The first JSON object in a section (the CLI's --json output), strictly parsed."""
    start = body.find("{")
    assert start >= 0, body[-2000:]
    obj, _ = json.JSONDecoder().raw_decode(body[start:])
    assert isinstance(obj, dict), body[-2000:]
    return obj


def polkit_of(body: str) -> dict:
    found = re.findall(r"^POLKIT (\{.*\})$", body, re.M)
    assert len(found) == 1, body[-3000:]
    obj = json.loads(found[0])
    assert isinstance(obj, dict) and isinstance(obj.get("asked"), list), obj
    return obj


def scx(body: str) -> tuple[str, str]:
    m = re.search(r"^state=(\S*) ops=(\S*)$", body, re.M)
    assert m, body
    return m.group(1), m.group(2)


def _prerequisites() -> Kit:
    if os.geteuid() != 0:
        pytest.fail("the system test needs root (debootstrap, chroot, qemu's 9p shares)",
                    pytrace=False)
    for tool in ("qemu-system-x86_64", "debootstrap", "unshare", "dpkg-buildpackage"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (packaging/setup-dev.sh installs it)", pytrace=False)
    try:
        return find_kit()
    except KitError as e:
        pytest.fail(f"the system test boots the guest kit's sched_ext kernel: {e}",
                    pytrace=False)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, built_debs: list[Path]) -> SystemRun:
    kit = _prerequisites()
    work = tmp_path_factory.mktemp("system")
    res = SystemRun()
    t = time.monotonic()
    tree = system_root(built_debs, work)
    res.timings["root"] = time.monotonic() - t
    share = work / "share"
    prepare_share(share, built_debs, kit, {
        "polkit_answer.py": GUEST / "polkit_answer.py",
        "userfifo.bpf.c": GUEST / "userfifo.bpf.c",
        "null_deref.bpf.c": REPO / "tests/fixtures/bad_schedulers/verifier_null_deref.bpf.c",
    }, ADMIN_PASSWORD)
    shutil.copy2(GUEST / "root.sh", share / "root.sh")
    shutil.copy2(GUEST / "session.sh", share / "session.sh")
    machine = Machine(kit, tree, share)
    try:
        machine.start()
        logged_in = machine.wait_for("session.log", BOOT_TIMEOUT)
        res.timings["boot+install+login"] = time.monotonic() - machine.started
        if logged_in:
            # the login shell writes session.exit when the script is over, however it ended
            machine.wait_for("session.exit", SESSION_TIMEOUT)
            res.finished = "end" in sections(read_guest_file(share / "session.log"))
        res.timings["total"] = time.monotonic() - machine.started
    finally:
        machine.stop()
        res.serial = machine.serial_tail(20000)
    res.install = sections(read_guest_file(share / "install.log"))
    res.session = sections(read_guest_file(share / "session.log"))
    for name, text in {**res.install, **res.session}.items():  # the CI log shows the answers
        print(f"---- {name}\n" + "\n".join(text.splitlines()[-25:]))
    print("\ntimings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in res.timings.items()))
    if not res.session:
        pytest.fail(f"no session ran in the machine; serial tail:\n{res.serial[-6000:]}",
                    pytrace=False)
    return res


# -- the machine ---------------------------------------------------------------------------
def test_packages_install_with_apt_inside_the_machine(system: SystemRun) -> None:
    body = system.install.get("install", "")
    assert exit_status(body) == 0, body[-4000:]
    assert "2 newly installed" in body, body[-4000:]


def test_the_user_has_a_local_active_logind_session(system: SystemRun) -> None:
    body = system.ok("session")
    for want in ("Remote=no", "Seat=seat0", "Active=yes", "Class=user", "TTY=tty1"):
        assert re.search(rf"^{want}$", body, re.M), body
    assert "tester" in system.ok("start")


def test_the_session_ran_to_its_end(system: SystemRun) -> None:
    assert system.finished, list(system.session)


# -- status, bus activation, the unit's hardening ------------------------------------------
def test_status_bus_activates_the_helper_under_its_unit(system: SystemRun) -> None:
    assert system.section("helper-before").split()[0] == "inactive"
    st = json_of(system.ok("status"))
    assert st["supported"] is True, st
    assert st["trials"] == "in-place", st  # the machine is a micro-VM: no VM inside it
    cgroup = system.ok("helper-cgroup")
    assert re.search(r"^0::/system\.slice/schedcp-helper\.service$", cgroup, re.M), cgroup


def test_the_units_hardening_is_in_force(system: SystemRun) -> None:
    unit = system.ok("helper-unit")
    for want in ("ActiveState=active", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "PrivateNetwork=yes"):
        assert re.search(rf"^{want}$", unit, re.M), unit
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M)
    assert caps and set(caps.group(1).split()) == set(CAPS.split()), unit
    proc = system.ok("helper-proc")
    assert re.search(r"^NoNewPrivs:\s+1$", proc, re.M), proc
    assert re.search(r"^Seccomp:\s+2$", proc, re.M), proc  # the SystemCallFilter's filter


# -- verify --------------------------------------------------------------------------------
def _stages(report: dict) -> dict[str, str]:
    return {s["name"]: s["verdict"] for s in report["stages"]}


def test_verify_a_shipped_policy_in_place(system: SystemRun) -> None:
    report = json_of(system.ok("verify-fifo"))
    assert report["ok"] is True and report["token"], report
    stages = _stages(report)
    assert stages.get("kernel-verifier") == "pass" and stages.get("dynamic") == "pass", stages


def test_verify_a_user_written_scheduler(system: SystemRun) -> None:
    report = json_of(system.ok("verify-user"))
    assert report["ok"] is True, report
    bad = system.section("verify-user-bad")
    assert exit_status(bad) == 1, bad[-3000:]
    assert json_of(bad)["failed_stage"] == "kernel-verifier", bad[-3000:]


# -- polkit, deploy, restart, revert -------------------------------------------------------
def test_new_code_needs_the_administrators_password(system: SystemRun) -> None:
    body = system.section("deploy-user")
    pk = polkit_of(body)
    assert pk["registered"], pk
    assert pk["asked"] == ["org.schedcp.helper.deploy-new"], pk
    assert exit_status(body) == 0 and json_of(body)["state"] == "kept", body[-3000:]
    assert scx(system.section("scx-after-deploy-user")) == ("enabled", "schedcp_userfifo")


def test_a_kept_scheduler_survives_a_helper_restart(system: SystemRun) -> None:
    assert "rc=0" in system.section("restart-helper"), system.section("restart-helper")
    st = json_of(system.ok("status-after-restart"))
    assert st["last_known_good"], st
    assert scx(system.section("scx-after-restart")) == ("enabled", "schedcp_userfifo")


def test_reverting_ones_own_keep_needs_no_password(system: SystemRun) -> None:
    body = system.ok("revert")
    assert polkit_of(body)["asked"] == [], body[-3000:]
    assert scx(system.section("scx-after-revert"))[0] == "disabled"


def test_kill_9_mid_deploy_returns_the_kernel_default(system: SystemRun) -> None:
    body = system.section("kill-mid-deploy")
    states = re.findall(r"^state=(\S*) ops=(\S*)$", body, re.M)
    assert states and states[0] == ("enabled", "schedcp_fifo"), body[-3000:]
    assert re.search(r"^killed \d+ rc=0$", body, re.M), body[-3000:]
    assert states[-1][0] == "disabled", body[-3000:]
    # the deploying client noticed at once (HelperGone, exit 3), not at its timeout
    m = re.search(r"^client-exit=(\d+) after ([\d.]+) ([\d.]+)$", body, re.M)
    assert m and m.group(1) == "3", body[-3000:]
    assert float(m.group(3)) - float(m.group(2)) < 20, body[-3000:]
    assert "left the bus" in body, body[-3000:]
    assert scx(system.section("scx-after-kill"))[0] == "disabled"
    json_of(system.ok("status-after-kill"))  # the next call works (the bus starts it again)


# -- the loop and the tray -----------------------------------------------------------------
def test_optimize_verifies_deploys_measures_and_reverts(system: SystemRun) -> None:
    body = system.ok("optimize")
    steps = [json.loads(ln) for ln in body.splitlines() if ln.startswith("{")]
    roles = {s.get("role") for s in steps if isinstance(s, dict)}
    assert {"planning", "execution"} <= roles, body[-4000:]
    # a shipped policy switches without a password; only composed (new) code may ask
    assert set(polkit_of(body)["asked"]) <= {"org.schedcp.helper.deploy-new"}, body[-3000:]
    assert exit_status(system.section("revert-after-optimize")) == 0
    assert scx(system.section("scx-end"))[0] == "disabled"


def test_the_tray_starts_in_the_session_and_shows_the_helpers_state(system: SystemRun) -> None:
    body = system.section("tray")
    assert re.search(r"^alive=0$", body, re.M), body[-3000:]  # running until we stopped it
    states = re.findall(r"^schedcp-tray: state: (\w+)", body, re.M)
    st = json_of(system.ok("status-with-tray"))
    assert st["deployment_state"] == "kept" and st["state"] == "enabled", st
    assert states and states[-1] == "optimized", body[-3000:]  # what status says, as the tray
