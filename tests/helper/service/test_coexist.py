"""Living with the desktop's other tuners (issue 17), on the real test bus with the real helper
and polkitd: a stand-in for scx_loader (its published interface, tests/fixtures) and the real
power-profiles-daemon from Debian. Packaged scx_* schedulers scx_loader supports are switched
through it (one source of truth), the last group of tests.

This host has no sched_ext, so the stand-in writes what the kernel would show into a folder the
helper reads instead of /sys/kernel/sched_ext (``SCHEDCP_SCX_SYSFS``); the cycle with a real
scheduler attached runs in the micro-VM (test_vm_coexist.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dbus_stack import Stack, _readline, start_stack, wait_name

ROOT = Path(__file__).resolve().parents[3]
STANDIN = ROOT / "tests" / "fixtures" / "scx_loader_standin.py"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Its own stack: the helper reads a sysfs folder the stand-in writes, polls every 0.2 s."""
    d = tmp_path_factory.mktemp("coexist")
    sysfs = d / "sched_ext"
    (sysfs / "root").mkdir(parents=True)
    (sysfs / "state").write_text("disabled\n")
    (sysfs / "root" / "ops").write_text("\n")
    try:
        stack = start_stack(helper=False)
    except RuntimeError as e:
        pytest.fail(f"cannot start the D-Bus test stack: {e}", pytrace=False)
    try:
        stack.start_helper(extra_env={"SCHEDCP_SCX_SYSFS": str(sysfs),
                                      "SCHEDCP_OTHERS_POLL_S": "0.2"})
        yield stack, sysfs, d
    finally:
        stack.close()


class Loader:
    """The scx_loader stand-in (it names its process scx_loader); calls logged as JSON lines."""

    def __init__(self, stack: Stack, sysfs: Path, d: Path):
        self.log = d / f"loader-{time.monotonic_ns()}.jsonl"
        self.stack = stack
        self.proc = subprocess.Popen([sys.executable, str(STANDIN), "--address", stack.address,
                                      "--sysfs", str(sysfs), "--log", str(self.log)],
                                     stdout=subprocess.PIPE, text=True, env=stack.env)
        if _readline(self.proc, 20).strip() != "ready":
            self.stop()
            raise RuntimeError("the scx_loader stand-in did not start")

    def _send(self, method: str, *args: str) -> str:
        r = subprocess.run(["dbus-send", f"--bus={self.stack.address}", "--print-reply",
                            "--dest=org.scx.Loader", "/org/scx/Loader", method, *args],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def call(self, member: str, *args: str) -> str:
        return self._send(f"org.scx.Loader.{member}", *args)

    def prop(self, name: str) -> str:
        return self.call_props("Get", "string:org.scx.Loader", f"string:{name}")

    def call_props(self, member: str, *args: str) -> str:
        return self._send(f"org.freedesktop.DBus.Properties.{member}", *args)

    def calls(self) -> list[list]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def loader(world):
    stack, sysfs, d = world
    ld = Loader(stack, sysfs, d)
    try:
        yield ld
    finally:
        ld.stop()
        (sysfs / "state").write_text("disabled\n")
        (sysfs / "root" / "ops").write_text("\n")


def status_until(stack: Stack, pred, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    with stack.client() as c:
        while True:
            st = c.status()
            if pred(st) or time.monotonic() > deadline:
                return st
            time.sleep(0.1)


def test_status_names_scx_loaders_scheduler_and_mode_in_one_line(world, loader):
    stack, *_ = world
    with stack.client() as c:
        seen: list = []
        c.subscribe(lambda s: seen.append(s) if s.member == "OthersChanged" else None)
        before = c.status()
        assert before["attached_owner"] == "" and before["others"].startswith(
            "kernel default scheduler"), before["others"]
        assert "scx_loader" in before["tuners_active"]  # the stand-in runs, named scx_loader
        loader.call("StartScheduler", "string:scx_lavd", "uint32:1")
        st = status_until(stack, lambda s: s["attached_owner"] == "scx_loader")
        deadline = time.monotonic() + 10
        while not any("scx_lavd via scx_loader (Gaming)" in s.args[0] for s in seen) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    assert st["others"].startswith("scx_lavd via scx_loader (Gaming)"), st["others"]
    assert (st["attached_name"], st["attached_mode"]) == ("scx_lavd", "Gaming")
    assert any("scx_lavd via scx_loader (Gaming)" in s.args[0] for s in seen), seen


def test_a_deploy_over_scx_loaders_scheduler_is_refused_with_a_typed_error(world, loader):
    stack, *_ = world
    loader.call("StartScheduler", "string:scx_lavd", "uint32:1")
    status_until(stack, lambda s: s["attached_owner"] == "scx_loader")
    out = stack.as_user("schedcp-yes", "[('Switch', 'sa{sv}a{sv}', ['scx_simple', {}, {}])]")
    assert out[0]["error"] == "org.schedcp.Helper1.Error.OtherScheduler", out
    assert "scx_lavd via scx_loader (Gaming)" in out[0]["message"]
    assert "take_over" in out[0]["message"]
    assert [c[0] for c in loader.calls()] == ["StartScheduler"]  # nothing stopped


@pytest.mark.parametrize("start, back", [
    (("StartScheduler", "string:scx_lavd", "uint32:1"), ["SwitchScheduler", "scx_lavd", 1]),
    (("StartSchedulerWithArgs", "string:scx_bpfland", "array:string:-s,5000,--local-pcpu"),
     ["SwitchSchedulerWithArgs", "scx_bpfland", ["-s", "5000", "--local-pcpu"]]),
])
def test_take_over_stops_scx_loader_through_its_api_and_gives_it_back_as_it_ran(
        world, loader, start, back):
    """Ours cannot start on this host (no scx_simple binary, no sched_ext): the deployment
    fails after the take-over, and scx_loader gets its scheduler back with the same mode or
    the same arguments."""
    stack, sysfs, _ = world
    loader.call(*start)
    status_until(stack, lambda s: s["attached_owner"] == "scx_loader")
    out = stack.as_user("schedcp-yes", "[('Switch', 'sa{sv}a{sv}', ['scx_simple', {}, "
                        "{'take_over': Variant('b', True)}])]")
    assert not out[0]["ok"] and "could not start scx_simple" in out[0]["message"], out
    calls = loader.calls()
    assert [c[0] for c in calls] == [start[0], "StopScheduler", back[0]], calls
    assert calls[-1] == back
    st = status_until(stack, lambda s: s["given_back"] and s["attached_owner"] == "scx_loader")
    assert st["given_back"] == f"gave {back[1]} back to scx_loader", st
    assert st["taken_over"] == ""
    assert (sysfs / "state").read_text().strip() == "enabled"
    assert not (stack.state_dir / "takeover.json").exists()
    mode = loader.prop("SchedulerMode")
    assert f"uint32 {1 if back[0] == 'SwitchScheduler' else 0}" in mode, mode


def test_an_unknown_owner_is_taken_over_only_with_an_admin_and_a_process_to_stop(world):
    stack, sysfs, _ = world
    (sysfs / "root" / "ops").write_text("mystery\n")
    (sysfs / "state").write_text("enabled\n")
    try:
        st = status_until(stack, lambda s: s["attached_owner"] == "unknown")
        assert st["others"].startswith("mystery via an unknown owner"), st["others"]
        from schedcp.client import HelperError

        errs = []
        with stack.client() as c:
            for canary in ({}, {"take_over": True}):
                with pytest.raises(HelperError) as e:
                    c.switch("scx_simple", {}, canary)
                errs.append(e.value)
    finally:
        (sysfs / "state").write_text("disabled\n")
        (sysfs / "root" / "ops").write_text("\n")
    assert errs[0].name == "org.schedcp.Helper1.Error.OtherScheduler"
    assert errs[1].name == "org.schedcp.Helper1.Error.OtherScheduler"
    assert "cannot find the process holding mystery" in errs[1].message, errs[1].message
    log = stack.log.read_text()
    assert "action=org.schedcp.helper.take-over" in log.splitlines()[-1] or any(
        "action=org.schedcp.helper.take-over" in ln for ln in log.splitlines()[-5:]), log[-2000:]


def test_take_over_needs_an_administrator_for_unknown_owners_in_the_policy():
    import xml.etree.ElementTree as ET

    tree = ET.parse(ROOT / "packaging" / "polkit" / "org.schedcp.Helper1.policy")
    act = next(a for a in tree.iter("action") if a.get("id") == "org.schedcp.helper.take-over")
    assert {d.tag: d.text for d in act.find("defaults")} == {
        "allow_any": "auth_admin", "allow_inactive": "auth_admin", "allow_active": "auth_admin"}


def _status_with_daemon(stack, exe: Path, tuner: str) -> dict:
    """Status once the power-profile daemon ``exe`` owns its name and shows as ``tuner``;
    the daemon is stopped before returning."""
    p = subprocess.Popen([str(exe)], env=stack.env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_name(stack.address, "net.hadess.PowerProfiles")
        return status_until(stack, lambda s: tuner in s["tuners_active"])
    finally:
        p.terminate()
        p.wait(10)


def test_a_real_power_profiles_daemon_is_reported_as_an_active_tuner(world):
    stack, *_ = world
    ppd = Path("/usr/libexec/power-profiles-daemon")
    if not ppd.exists():
        pytest.fail("power-profiles-daemon is missing: packaging/setup-dev.sh installs it")
    st = _status_with_daemon(stack, ppd, "power-profiles-daemon")
    assert "power-profiles-daemon" in st["tuners_active"], st
    assert "power-profiles-daemon" in st["tuners_present"]
    assert "also active: " in st["others"] and "power-profiles-daemon" in st["others"]
    gone = status_until(stack, lambda s: "power-profiles-daemon" not in s["tuners_active"])
    assert "power-profiles-daemon" not in gone["tuners_active"]
    assert os.path.exists(ppd) and "power-profiles-daemon" in gone["tuners_present"]


def test_tuned_ppd_is_told_from_power_profiles_daemon_by_the_owner_of_the_name(world, tmp_path):
    """tuned-ppd speaks power-profiles-daemon's interface under the same names. Debian 12 has no
    tuned-ppd, so the real power-profiles-daemon runs under tuned-ppd's name: the helper must
    name tuned-ppd (the name's owner), not power-profiles-daemon (before: both)."""
    stack, *_ = world
    ppd = Path("/usr/libexec/power-profiles-daemon")
    if not ppd.exists():
        pytest.fail("power-profiles-daemon is missing: packaging/setup-dev.sh installs it")
    renamed = tmp_path / "tuned-ppd"
    shutil.copy(ppd, renamed)
    st = _status_with_daemon(stack, renamed, "tuned-ppd")
    assert "tuned-ppd" in st["tuners_active"], st
    assert "power-profiles-daemon" not in st["tuners_active"], st
    assert "tuned-ppd" in st["others"], st


def test_a_take_over_recorded_before_a_restart_is_given_back(world, loader):
    stack, *_ = world
    loader.call("StartScheduler", "string:scx_lavd", "uint32:2")
    loader.call("StopScheduler")  # as if we had stopped it, then died
    (stack.state_dir / "takeover.json").write_text(json.dumps(
        {"owner": "scx_loader", "name": "scx_lavd", "mode": 2, "args": [], "pid": 0}))
    stack.stop_helper()
    stack.start_helper(extra_env={"SCHEDCP_SCX_SYSFS": str(world[1]),
                                  "SCHEDCP_OTHERS_POLL_S": "0.2"})
    assert loader.calls()[-1] == ["SwitchScheduler", "scx_lavd", 2]
    assert not (stack.state_dir / "takeover.json").exists()


def test_schedcp_status_and_deploy_say_who_holds_the_scheduler(world, loader, monkeypatch,
                                                               capsys):
    from schedcp.cli.main import main

    stack, *_ = world
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", stack.address)
    loader.call("StartScheduler", "string:scx_lavd", "uint32:3")
    status_until(stack, lambda s: s["attached_owner"] == "scx_loader")
    assert main(["status"]) == 0
    assert "CPU scheduler: scx_lavd via scx_loader (LowLatency)" in capsys.readouterr().out
    assert main(["deploy", "--scx", "scx_simple"]) == 6
    err = capsys.readouterr().err
    assert "scx_lavd via scx_loader (LowLatency) holds the CPU scheduler" in err, err


SYSTEMD_STANDIN = ROOT / "tests" / "fixtures" / "systemd_standin.py"


def cgroup_for_tests() -> Path:
    """A folder in a writable cgroup hierarchy (name=systemd v1, or v2) to play scx.service."""
    for root in (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"),
                 Path("/sys/fs/cgroup")):
        if (root / "cgroup.procs").exists():
            d = root / f"schedcp-test-{os.getpid()}"
            try:
                (d / "scx.service").mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            return d
    pytest.fail("no writable cgroup hierarchy to run the scx.service stand-in in")


def test_take_over_from_scx_service_goes_through_systemd_and_gives_it_back(world, tmp_path):
    """scx.service's scheduler (a process in a real cgroup named scx.service) is named from
    its cgroup; take-over stops the unit through systemd's StopUnit and StartUnit gives it
    back (systemd itself is a stand-in: no systemd as PID 1 here)."""
    stack, sysfs, _ = world
    rusty = tmp_path / "scx_rusty"
    shutil.copy(shutil.which("sleep"), rusty)
    group = cgroup_for_tests()
    log = tmp_path / "systemd.jsonl"
    p = subprocess.Popen([sys.executable, str(SYSTEMD_STANDIN), "--address", stack.address,
                          "--cgroup", str(group / "scx.service"), "--sysfs", str(sysfs),
                          "--ops", "rusty", "--log", str(log), str(rusty), "300"],
                         stdout=subprocess.PIPE, text=True, env=stack.env)
    try:
        assert _readline(p, 20).strip() == "ready"
        st = status_until(stack, lambda s: s["attached_owner"] == "scx.service")
        assert st["others"].startswith("scx_rusty via scx.service"), st["others"]
        assert "scx.service" in st["tuners_active"]
        out = stack.as_user("schedcp-yes", "[('Switch', 'sa{sv}a{sv}', ['scx_simple', {}, {}]),"
                            "('Switch', 'sa{sv}a{sv}', ['scx_simple', {}, "
                            "{'take_over': Variant('b', True)}])]")
        assert out[0]["error"] == "org.schedcp.Helper1.Error.OtherScheduler", out
        assert "could not start scx_simple" in out[1]["message"], out
        calls = [json.loads(x) for x in log.read_text().splitlines()]
        assert calls == [["StopUnit", "scx.service", "replace"],
                         ["StartUnit", "scx.service", "replace"]], calls
        st = status_until(stack, lambda s: s["given_back"] and s["attached_owner"] ==
                          "scx.service")
        assert st["given_back"] == "gave scx_rusty back to scx.service", st
        assert (sysfs / "state").read_text().strip() == "enabled"
    finally:
        p.terminate()
        p.wait(20)
        (sysfs / "state").write_text("disabled\n")
        (sysfs / "root" / "ops").write_text("\n")
        for d in (group / "scx.service", group):
            deadline = time.monotonic() + 5
            while d.exists():
                try:
                    d.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


def test_optimize_stops_before_running_anything_unless_told_to_take_over(world, loader,
                                                                          tmp_path):
    from tests.app.agent.test_cli import optimize

    stack, *_ = world
    loader.call("StartScheduler", "string:scx_lavd", "uint32:1")
    status_until(stack, lambda s: s["attached_owner"] == "scx_loader")
    r, ran = optimize(tmp_path, stack.address, "--policy", "scx_simple")
    assert (r.returncode, ran) == (6, False), r.stderr
    assert "scx_lavd via scx_loader (Gaming) holds the CPU scheduler" in r.stderr
    assert "--take-over" in r.stderr and "Traceback" not in r.stderr
    assert [c[0] for c in loader.calls()] == ["StartScheduler"]


def test_optimize_with_take_over_asks_the_helper_to_take_over(world, loader, tmp_path):
    """Past the check, the candidate's Switch carries take_over: scx_loader is stopped through
    its API and, as scx_simple cannot start on this host, given its scheduler back."""
    from tests.app.agent.test_cli import optimize

    stack, *_ = world
    loader.call("StartScheduler", "string:scx_lavd", "uint32:1")
    status_until(stack, lambda s: s["attached_owner"] == "scx_loader")
    r, ran = optimize(tmp_path, stack.address, "--policy", "scx_simple", "--take-over")
    assert ran and "Traceback" not in r.stderr, r.stderr
    assert [c[0] for c in loader.calls()][:3] == ["StartScheduler", "StopScheduler",
                                                  "SwitchScheduler"], (loader.calls(), r.stderr)


# -- packaged schedulers switched through scx_loader (item 3: one source of truth) ---------
BPFLAND_ARGS = ["--slice-us", "5000", "--slice-us-lag", "40000"]  # slice_us=5000, defaults
CANARY = {"window_s": 2.0}


def _via(st: dict) -> bool:
    return st["deployment_via"] == "scx_loader" and st["attached_via"] == "scx_loader"


def test_a_supported_packaged_scheduler_is_run_by_scx_loader_and_stopped_through_it(
        world, loader):
    stack, sysfs, _ = world
    with stack.client() as c:
        avail = {s["name"]: s["available"] for s in c.list_schedulers()}
        # not installed here, but scx_loader runs it: available; scx_simple it does not
        assert (avail["scx_bpfland"], avail["scx_simple"]) == (True, False), avail
        dep = c.switch("scx_bpfland", {"slice_us": 5000}, CANARY)
        st = status_until(stack, _via)
        assert st["deployment"] == dep and _via(st), st
        assert st["others"].startswith("scx_bpfland via scx_loader for SchedCP"), st["others"]
        assert st["attached_owner"] == "schedcp" and st["conflict"] == "", st
        assert "scx_bpfland" in loader.prop("CurrentScheduler")
        assert (stack.state_dir / "via-loader.json").exists()
        c.revert(dep)
        hist = c.history(5)
    assert loader.calls() == [["SwitchSchedulerWithArgs", "scx_bpfland", BPFLAND_ARGS],
                              ["StopScheduler"]], loader.calls()
    assert (sysfs / "state").read_text().strip() == "disabled"
    assert not (stack.state_dir / "via-loader.json").exists()
    mine = next(d for d in hist if d["id"] == dep)
    assert (mine["via"], mine["state"]) == ("scx_loader", "reverted"), mine


def test_a_name_scx_loader_does_not_support_is_started_by_the_helper_as_before(world, loader):
    """scx_simple is not in the stand-in's SupportedSchedulers: the helper spawns it itself
    (here it is not installed, so the spawn fails) and scx_loader is never asked."""
    stack, *_ = world
    from schedcp.client import HelperError

    with stack.client() as c, pytest.raises(HelperError) as e:
        c.switch("scx_simple", {}, CANARY)
    assert "could not start scx_simple" in e.value.message
    assert "is not installed" in e.value.message, e.value.message
    assert loader.calls() == []


def test_without_scx_loader_a_supported_name_is_started_by_the_helper_as_before(world):
    stack, *_ = world
    from schedcp.client import HelperError

    with stack.client() as c, pytest.raises(HelperError) as e:
        c.switch("scx_bpfland", {}, CANARY)
    assert "scx_bpfland is not installed" in e.value.message, e.value.message
    assert not (stack.state_dir / "via-loader.json").exists()


def test_over_scx_loaders_own_scheduler_take_over_then_give_back_its_scheduler_and_mode(
        world, loader):
    stack, *_ = world
    loader.call("StartScheduler", "string:scx_lavd", "uint32:1")
    status_until(stack, lambda s: s["attached_owner"] == "scx_loader")
    with stack.client() as c:
        dep = c.switch("scx_bpfland", {"slice_us": 5000}, {**CANARY, "take_over": True})
        st = status_until(stack, _via)
        assert _via(st) and st["taken_over"] == "scx_lavd from scx_loader", st
        c.revert(dep)
    st = status_until(stack, lambda s: s["given_back"] and s["attached_owner"] == "scx_loader")
    assert [c[0] for c in loader.calls()] == [
        "StartScheduler", "StopScheduler", "SwitchSchedulerWithArgs", "StopScheduler",
        "SwitchScheduler"], loader.calls()
    assert loader.calls()[-1] == ["SwitchScheduler", "scx_lavd", 1]
    assert st["others"].startswith("scx_lavd via scx_loader (Gaming)"), st["others"]


def test_a_user_switching_scx_loader_away_from_ours_is_recorded_and_not_fought(world, loader):
    stack, *_ = world
    with stack.client() as c:
        dep = c.switch("scx_bpfland", {"slice_us": 5000}, CANARY)
        status_until(stack, _via)
        loader.call("SwitchScheduler", "string:scx_lavd", "uint32:2")  # e.g. scxctl switch
        st = status_until(stack, lambda s: not s["deployment"])
        hist = c.history(5)
    mine = next(d for d in hist if d["id"] == dep)
    assert mine["state"] == "replaced" and "replaced by scx_loader" in mine["reason"], mine
    assert [c[0] for c in loader.calls()] == ["SwitchSchedulerWithArgs", "SwitchScheduler"]
    assert st["others"].startswith("scx_lavd via scx_loader (PowerSave)"), st["others"]


def test_kept_through_scx_loader_comes_back_through_it_after_a_restart(world, loader):
    stack, sysfs, _ = world
    with stack.client() as c:
        dep = c.switch("scx_bpfland", {"slice_us": 5000}, CANARY)
        status_until(stack, _via)
        c.keep(dep)
    try:
        stack.stop_helper()  # a clean stop: scx_loader is asked to stop ours, as a child dies
        assert loader.calls()[-1] == ["StopScheduler"], loader.calls()
        stack.start_helper(extra_env={"SCHEDCP_SCX_SYSFS": str(sysfs),
                                      "SCHEDCP_OTHERS_POLL_S": "0.2"})
        st = status_until(stack, _via)
        assert _via(st) and st["deployment_state"] == "kept", st
        assert loader.calls()[-1] == ["SwitchSchedulerWithArgs", "scx_bpfland", BPFLAND_ARGS]
    finally:
        with stack.client() as c:
            c.revert()
    assert (sysfs / "state").read_text().strip() == "disabled"


def test_a_crashed_helpers_canary_that_scx_loader_still_runs_is_stopped_at_start(world, loader):
    stack, sysfs, _ = world
    stack.stop_helper()
    loader.call("SwitchSchedulerWithArgs", "string:scx_bpfland",
                "array:string:" + ",".join(BPFLAND_ARGS))
    (stack.state_dir / "via-loader.json").write_text(json.dumps(
        {"name": "scx_bpfland", "args": BPFLAND_ARGS}))  # as the crashed helper left it
    stack.start_helper(extra_env={"SCHEDCP_SCX_SYSFS": str(sysfs),
                                  "SCHEDCP_OTHERS_POLL_S": "0.2"})
    assert loader.calls()[-1] == ["StopScheduler"], loader.calls()
    assert (sysfs / "state").read_text().strip() == "disabled"
    assert not (stack.state_dir / "via-loader.json").exists()
