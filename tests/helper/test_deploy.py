"""Deployment: canary, circuit breaker, last-known-good and the kernel's fallback.

Host tests drive the Deployer with a fake launcher and a faked sched_ext; the VM test runs every
scenario for real in ONE guest boot (tests/helper/guest_deploy.py) and the tests below assert on
its JSON. vtime is verified on the host first (that boots its own guest for the trial).
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from schedcp_helper import canary as canary_mod
from schedcp_helper import deploy as deploy_mod
from schedcp_helper.core import HelperCore
from schedcp_helper.deploy import CanaryParams, Deployer, DeployError, Spec
from schedcp_helper.scxstate import ScxState
from tests.fixtures.schedulers import run_in_guest
from tests.fixtures.scx_examples import build_examples

ROOT = Path(__file__).resolve().parents[2]
GUEST_SCRIPT = Path(__file__).with_name("guest_deploy.py")
SLEEPER_C = r"""
#include <time.h>
/* a periodic task: ~2 ms of CPU, then 10 ms asleep, forever */
static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}
int main(void)
{
	struct timespec nap = { 0, 10000000 };
	for (;;) {
		double t = cpu();
		while (cpu() - t < 0.002)
			;
		nanosleep(&nap, 0);
	}
}
"""


# -- host: the Deployer with a fake launcher and a faked sched_ext -----------------------------
class FakeRunning:
    def __init__(self, world: dict, spec: Spec):
        self.world, self.ops, self.stopped = world, f"ops_{spec.name}", False
        world.update(state="enabled", ops=self.ops)

    def alive(self) -> bool:  # like BpfRunning: we still hold it, whatever the kernel did
        return not self.stopped

    def stop(self) -> None:
        self.stopped = True
        if self.world["ops"] == self.ops:
            self.world.update(state="disabled", ops="")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    world = {"state": "disabled", "ops": ""}
    def sysfs():
        return ScxState(True, world["state"], world["ops"])

    monkeypatch.setattr(deploy_mod, "read_state", sysfs)
    monkeypatch.setattr(canary_mod, "read_state", sysfs)
    monkeypatch.setattr(deploy_mod, "last_seq", lambda: None)
    monkeypatch.setattr(canary_mod, "kernel_events", lambda seq=None: [])
    events: list[tuple[str, str, str]] = []
    d = Deployer(tmp_path / "state", lambda spec: FakeRunning(world, spec),
                 lambda kind, dep: events.append((kind, dep.spec.name, dep.state)))
    yield d, world, events
    d.shutdown()


def _wait(pred, timeout=5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_report_after_the_canary_window_still_trips_the_breaker(fake):
    d, world, events = fake
    good = d.deploy(Spec("bpf", "good"), CanaryParams(window_s=0.05, poll_s=0.01), uid=0)
    assert _wait(lambda: good.state == "passed")
    d.keep(good.id)
    dep = d.deploy(Spec("bpf", "new"), CanaryParams(window_s=0.05, poll_s=0.01), uid=0)
    assert _wait(lambda: dep.state == "passed")  # the watcher has returned
    for _ in range(3):
        d.report(dep.id, 10.0, 20.0, higher_is_better=True)
    assert dep.state == "reverted" and "reported metric regressed" in dep.reason
    assert world["ops"] == "ops_good"
    assert events[-1] == ("reverted", "new", "reverted")


def test_kept_owner_names_whose_kept_choice_a_revert_would_end(fake):
    """Revert('') by any active user ended an admin's kept scheduler; the service asks for
    an administrator when this names someone else."""
    d, _world, _ = fake
    assert d.kept_owner() is None  # nothing runs, nothing kept
    dep = d.deploy(Spec("bpf", "mine"), CanaryParams(window_s=30), uid=1000)
    assert d.kept_owner() is None  # a canary is not a kept choice
    d.keep(dep.id)
    assert d.kept_owner() == 1000 and d.kept_owner(dep.id) == 1000
    assert d.kept_owner("0123abcd") is None  # not the running one: revert refuses anyway
    d.current = None  # as after a restart: only the kept spec and the history remain
    assert d.kept_owner() == 1000
    d.history.clear()
    assert d.kept_owner() == 0  # kept with no record of who: an administrator's


def test_revert_needs_an_admin_only_for_someone_elses_kept_choice():
    from schedcp_helper.service import authz
    from schedcp_helper.service.dbus import revert_action

    assert revert_action(1000, None) == authz.REVERT
    assert revert_action(1000, 1000) == authz.REVERT
    assert revert_action(0, 1000) == authz.REVERT
    assert revert_action(1001, 1000) == authz.REVERT_OTHER
    assert revert_action(1001, 0) == authz.REVERT_OTHER


def test_a_keep_racing_the_breaker_wins_cleanly(fake):
    d, world, _ = fake
    dep = d.deploy(Spec("bpf", "x"), CanaryParams(window_s=30), uid=0)
    d.keep(dep.id)
    d._trip(dep, "late regression")  # the watcher's revert arriving after the keep
    assert dep.state == "kept" and world["ops"] == "ops_x"
    errors: list[BaseException] = []
    threading.excepthook = lambda a: errors.append(a.exc_value)
    try:  # a trip for a deployment already replaced is a no-op, not an exception in a thread
        d2 = d.deploy(Spec("bpf", "y"), CanaryParams(window_s=30), uid=0)
        d._trip(dep, "stale")
        assert d.current is d2 and world["ops"] == "ops_y"
    finally:
        threading.excepthook = threading.__excepthook__
    assert not errors


def test_ejection_is_noticed_and_a_failed_launch_restores_the_previous(fake):
    d, world, _ = fake
    good = d.deploy(Spec("bpf", "good"), CanaryParams(window_s=30), uid=0)
    d.keep(good.id)
    dep = d.deploy(Spec("bpf", "bad"), CanaryParams(window_s=30, poll_s=0.01), uid=0)
    world.update(state="disabled", ops="")  # sched_ext dropped it
    assert _wait(lambda: dep.state == "reverted")
    assert "no longer runs it" in dep.reason and world["ops"] == "ops_good"

    def broken(spec):
        if spec.name == "broken":
            raise RuntimeError("no such object")
        return FakeRunning(world, spec)

    d.launch = broken
    with pytest.raises(DeployError, match="could not start broken: no such object"):
        d.deploy(Spec("bpf", "broken"), CanaryParams(), uid=0)
    assert world["ops"] == "ops_good" and d.history[-1].state == "failed"


def _disk_full(monkeypatch):
    """The state folder's disk fills up: every save fails as a full disk does."""
    def full(self, kept, history):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(deploy_mod.Store, "save", full)


def test_a_failed_save_after_attaching_leaves_the_previous_state(fake, monkeypatch):
    """It left the new scheduler running with no canary, no guard and no client-exit revert,
    and the caller saw "internal error"."""
    d, world, events = fake
    good = d.deploy(Spec("bpf", "good"), CanaryParams(window_s=30), uid=0)
    d.keep(good.id)
    _disk_full(monkeypatch)
    with pytest.raises(DeployError, match=r"could not record the deployment of new.*No space"):
        d.deploy(Spec("bpf", "new"), CanaryParams(window_s=30), uid=1000, owner=":1.7")
    assert world["ops"] == "ops_good"  # the previous scheduler is back...
    assert d.current is not None and d.current.spec.name == "good"  # ...as the kept one
    assert d.current.state == "kept" and d._watcher.is_alive()  # ...under its guard
    assert events[-1] == ("failed", "new", "failed")
    failed = [h for h in d.history if h.spec.name == "new"]
    assert [h.state for h in failed] == ["failed"]


def test_a_failed_keep_is_not_a_keep(fake, monkeypatch):
    d, world, _ = fake
    dep = d.deploy(Spec("bpf", "x"), CanaryParams(window_s=30), uid=1000, owner=":1.9")
    _disk_full(monkeypatch)
    with pytest.raises(DeployError, match="could not record the keep"):
        d.keep(dep.id)
    assert dep.state == "canary" and dep.owner == ":1.9" and d.kept is None
    d.owner_vanished(":1.9")  # the client-exit revert still applies
    assert dep.state == "reverted" and world["ops"] == ""


def test_a_failed_save_during_revert_still_reverts(fake, monkeypatch):
    d, world, _ = fake
    dep = d.deploy(Spec("bpf", "x"), CanaryParams(window_s=30), uid=0)
    _disk_full(monkeypatch)
    d.revert("test", dep.id)
    assert dep.state == "reverted" and world["ops"] == ""


def test_a_kept_scheduler_restored_at_start_is_guarded(tmp_path, monkeypatch):
    """recover() restarted the kept scheduler with nothing watching it."""
    monkeypatch.setattr(canary_mod, "GUARD_POLL_S", 0.01)
    world = {"state": "disabled", "ops": ""}
    def sysfs():
        return ScxState(True, world["state"], world["ops"])

    monkeypatch.setattr(deploy_mod, "read_state", sysfs)
    monkeypatch.setattr(canary_mod, "read_state", sysfs)
    monkeypatch.setattr(deploy_mod, "last_seq", lambda: None)
    monkeypatch.setattr(canary_mod, "kernel_events", lambda seq=None: [])
    first = Deployer(tmp_path / "state", lambda spec: FakeRunning(world, spec))
    good = first.deploy(Spec("bpf", "good"), CanaryParams(window_s=30), uid=1000)
    first.keep(good.id)
    first._stop_watch.set()  # the helper dies; its threads with it
    world.update(state="disabled", ops="")
    d = Deployer(tmp_path / "state", lambda spec: FakeRunning(world, spec))
    try:
        assert d.recover() == good.spec and world["ops"] == "ops_good"
        restored = d.current
        assert restored.state == "kept" and restored.uid == 1000
        world.update(state="disabled", ops="")  # ejected later
        assert _wait(lambda: restored.state == "reverted")
        assert "no longer runs it" in restored.reason
    finally:
        d.shutdown()


def test_a_kept_scheduler_ejected_later_brings_back_what_it_replaced(fake, monkeypatch):
    monkeypatch.setattr(canary_mod, "GUARD_POLL_S", 0.01)
    d, world, _ = fake
    good = d.deploy(Spec("bpf", "good"), CanaryParams(window_s=30), uid=0)
    d.keep(good.id)
    dep = d.deploy(Spec("bpf", "later"), CanaryParams(window_s=0.05, poll_s=0.01), uid=0)
    assert _wait(lambda: dep.state == "passed")
    d.keep(dep.id)
    world.update(state="disabled", ops="")  # ejected long after the canary
    assert _wait(lambda: dep.state == "reverted")
    assert dep.reason.startswith("after the canary")
    assert world["ops"] == "ops_good" and d.kept.name == "good"


def test_a_scheduler_kept_during_its_canary_and_ejected_is_still_replaced(fake):
    d, world, _ = fake
    good = d.deploy(Spec("bpf", "good"), CanaryParams(window_s=30), uid=0)
    d.keep(good.id)
    dep = d.deploy(Spec("bpf", "early"), CanaryParams(window_s=30, poll_s=0.01), uid=0)
    d.keep(dep.id)  # kept at once, long before the canary window ends
    world.update(state="disabled", ops="")
    assert _wait(lambda: dep.state == "reverted")
    assert world["ops"] == "ops_good" and d.kept.name == "good"


def test_corrupt_state_file_is_set_aside(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text("{not json")
    d = Deployer(state, lambda spec: None)
    assert d.kept is None and d.history == []
    assert [p.name.startswith("state.corrupt-") for p in state.iterdir()] == [True]


@pytest.mark.parametrize("content, why", [
    ("[]", "not a version 1"),
    ('{"version": 1, "kept": "fifo"}', "not an object"),
    ('{"version": 1, "kept": {"kind": "bpf", "name": "x", "artifact": "../../etc"}}',
     "bad artifact id"),
    ('{"version": 1, "kept": null, "history": {"a": 1}}', "not a list"),
    ('{"version": 7, "kept": null, "history": []}', "not a version 1"),
])
def test_a_state_file_of_the_wrong_shape_is_set_aside_with_a_warning(tmp_path, caplog, content,
                                                                     why):
    """A wrong shape crashed start-up (a restart loop) or was dropped silently."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text(content)
    with caplog.at_level("WARNING", logger="schedcp_helper.deploy"):
        d = Deployer(state, lambda spec: None)
    assert d.kept is None and d.history == []
    assert [p.name.startswith("state.corrupt-") for p in state.iterdir()] == [True]
    assert any(why in r.getMessage() and "set aside" in r.getMessage() for r in caplog.records)


def test_a_malformed_history_entry_is_dropped_and_the_rest_kept(tmp_path, caplog):
    state = tmp_path / "state"
    state.mkdir()
    spec = {"kind": "bpf", "name": "fifo", "artifact": "ab" * 32, "hints": {"12": 5}}
    good = {"id": "1", "spec": spec, "uid": 0, "state": "kept"}
    (state / "state.json").write_text(json.dumps(
        {"version": 1, "kept": spec, "history": [good, {"id": "2", "spec": 3, "uid": 0}]}))
    with caplog.at_level("WARNING", logger="schedcp_helper.deploy"):
        d = Deployer(state, lambda spec: None)
    assert d.kept == Spec("bpf", "fifo", {}, "ab" * 32, {12: 5})
    assert [h.id for h in d.history] == ["1"]
    assert any("malformed history entry" in r.getMessage() for r in caplog.records)


def test_scx_child_dies_with_its_parent_even_when_a_short_lived_thread_started_it(tmp_path):
    """PR_SET_PDEATHSIG fires when the forking *thread* exits: the spawner thread must live."""
    code = textwrap.dedent("""
        import threading, time
        from schedcp_helper.scxrun import _spawner
        out = []
        t = threading.Thread(target=lambda: out.append(_spawner.popen(["sleep", "60"])))
        t.start(); t.join()
        time.sleep(0.3)  # the thread that asked is gone; the child must still run
        print(out[0].pid, out[0].poll(), flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid, rc = p.stdout.readline().split()
    assert rc == "None"
    p.kill()
    p.wait()

    def dead() -> bool:
        try:  # a zombie waiting for init to reap it is dead too
            return Path(f"/proc/{pid}/stat").read_text().split()[2] in ("Z", "X")
        except FileNotFoundError:
            return True

    assert _wait(dead, 5), f"sleep {pid} outlived its parent"


# -- VM: every scenario in one boot -----------------------------------------------------------
@pytest.fixture(scope="module")
def scenarios(vm_kit, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("deploy")
    kit = vm_kit
    for src in ("tests/fixtures/bad_schedulers/hidden_stall.bpf.c", "bpf/fifo.bpf.c"):
        subprocess.run(
            ["clang-19", "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86", "-I",
             str(kit.include), "-I", str(kit.include / "bpf"), "-I", str(ROOT / "bpf"), "-c",
             str(ROOT / src), "-o", str(out / Path(src).name.replace(".c", ".o"))],
            check=True, capture_output=True, text=True)
    (out / "sleeper.c").write_text(SLEEPER_C)
    subprocess.run(["cc", "-O2", "-o", str(out / "sleeper"), str(out / "sleeper.c")], check=True)
    bindir = build_examples(kit)
    t0 = time.monotonic()
    report = HelperCore(state_dir=out / "state").verify_policy("vtime", {}, 0)
    if report.failed_stage == "dynamic":  # the workload judge is timing-based: one retry
        print(f"vtime refused at dynamic, retrying once:\n{report.render()}")
        shutil.rmtree(out / "state" / "verdicts", ignore_errors=True)  # dynamic: not cached
        report = HelperCore(state_dir=out / "state").verify_policy("vtime", {}, 0)
    verify_s = time.monotonic() - t0
    assert report.ok, report.render()
    (out / "token.txt").write_text(report.token)
    t0 = time.monotonic()
    result, output = run_in_guest(
        kit, out, f"{sys.executable} {GUEST_SCRIPT} {out / 'hidden_stall.bpf.o'} "
        f"{out / 'fifo.bpf.o'} {bindir} {out / 'sleeper'}", timeout=240)
    print(f"host verify {verify_s:.1f} s; guest run {time.monotonic() - t0:.1f} s")
    assert result.returncode == 0, output[-4000:]
    data = json.loads((out / "deploy.json").read_text())
    print(json.dumps(data, indent=1))
    return data


def sc(data: dict, name: str) -> dict:
    s = data["scenarios"][name]
    assert "error" not in s, s["error"]
    return s


@pytest.mark.vm
def test_a_deploy_pass_keep_persists(scenarios):
    s = sc(scenarios, "a_keep")
    ops = scenarios["vtime_ops"]
    assert s["running"] == {"state": "enabled", "ops": ops} and ops == "schedcp_vtime"
    assert s["state_before_keep"] == "passed" and s["dep"]["state"] == "kept"
    for kept in (s["saved_kept"], s["status_lkg"], s["reloaded_kept"]):
        assert kept["name"] == "vtime" and kept["kind"] == "bpf"
        assert kept["tunables"] == {"slice_us": 5000, "max_budget_us": 5000}


@pytest.mark.vm
def test_b_reported_regression_reverts_to_last_known_good_fast(scenarios):
    s = sc(scenarios, "b_reported_regression")
    assert s["running"]["ops"] == "simple"
    assert s["after_two_reports"] == "canary"  # below the strike count nothing happens
    assert s["dep"]["state"] == s["history"]["state"] == "reverted"
    assert s["dep"]["reason"] == "reported metric regressed: 100 vs baseline 50"
    assert s["restored"] == {"state": "enabled", "ops": "schedcp_vtime"}
    # issue 15: the restored last-known-good runs under the same ejection guard, as the
    # current (kept) deployment, rather than unwatched with no current deployment
    cur = s["status_current"]
    assert cur and cur["state"] == "kept" and cur["reason"].startswith("restored after "), cur
    assert s["late_passed"] and s["late_dep"]["state"] == "reverted"  # after the window too
    assert s["late_restored"]["ops"] == "schedcp_vtime"
    times = (s["revert_s"], s["late_revert_s"])
    print(f"report → last-known-good running again: {times} s")
    # target < 2 s (typically 0.5-0.9 s: mostly loading the kept object); the TCG guest shares
    # two cores with other work, and one run under load saw 3.1 s, hence min + a hard bound
    assert None not in times and min(times) < 2.0 and max(times) < 4.0


@pytest.mark.vm
def test_c_watchdog_ejection_restores_last_known_good(scenarios):
    s = sc(scenarios, "c_ejection")
    assert s["deployed_ops"] == "schedcp_hidden_stall"
    assert s["kernel_event"]["reason"] == "runnable task stall"
    assert s["dep"]["state"] == "reverted"
    assert s["dep"]["reason"].startswith("sched_ext ejected it")
    assert "runnable task was not run within the watchdog timeout" in s["dep"]["reason"]
    assert s["history"]["reason"] == s["dep"]["reason"]
    assert s["restored"] == {"state": "enabled", "ops": "schedcp_vtime"}
    print(f"ejection (kernel log) → vtime running again: {s['ejection_to_restored_s']} s; "
          f"deploy → restored {s['deploy_to_restored_s']} s (timeout_ms 5000)")
    assert 0 <= s["ejection_to_restored_s"] < 2.0


@pytest.mark.vm
def test_d_runqueue_wait_regression_reverts(scenarios):
    s = sc(scenarios, "d_wait_regression")
    assert s["dep"]["state"] == "reverted"
    assert s["dep"]["reason"] == f"runqueue wait of pid {s['target_pid']} rose past 3x its baseline"
    assert s["end"] == {"state": "disabled", "ops": ""}  # nothing kept then: kernel default
    print(f"fifo behind niced hogs: reverted {s['detect_s']} s after deploy started")


@pytest.mark.vm
def test_c2_a_kept_scheduler_ejected_later_is_replaced_by_the_previous(scenarios):
    c2 = sc(scenarios, "c2_kept_then_ejected")
    assert c2["kept_state"] == "kept"
    assert c2["dep"]["state"] == "reverted" and "after the canary" in c2["dep"]["reason"]
    assert c2["restored"]["ops"] == "schedcp_vtime" and c2["saved_kept"]["name"] == "vtime"
    assert c2["keep_to_restored_s"] is not None and c2["keep_to_restored_s"] < 15
    # issue 17: no ejection loop: c's stall suspended it; only resume runs it again, and its
    # second stall suspends it again
    assert "hidden_stall is suspended" in c2["suspended"], c2
    assert "runnable task stall" in c2["suspended"]
    assert c2["running_after_refusal"]["ops"] == "schedcp_vtime"
    assert c2["suspended_again"] == ["hidden_stall"]


@pytest.mark.vm
def test_e_owner_vanished_reverts_only_unkept(scenarios):
    s = sc(scenarios, "e_owner")
    assert s["other_owner"] == "canary"
    assert s["dep"]["state"] == "reverted" and ":1.42" in s["dep"]["reason"]
    assert s["restored"]["ops"] == "schedcp_vtime"
    assert s["kept_dep"]["state"] == "kept" and s["kept_running"]["ops"] == "simple"
    assert s["after_undo"]["ops"] == "schedcp_vtime" and s["after_undo_kept"]["name"] == "vtime"


@pytest.mark.vm
def test_h_revert_with_nothing_kept_is_the_kernel_default(scenarios):
    s = sc(scenarios, "h_revert_to_default")
    assert s["before"]["ops"] == "schedcp_vtime"
    assert s["after_plain_revert"]["state"] == "disabled" and s["kept_after_plain_revert"] is None
    assert s["running"]["ops"] == "simple"
    assert s["dep"]["state"] == "reverted" and s["after"] == {"state": "disabled", "ops": ""}


@pytest.mark.vm
def test_f_killed_helper_leaves_the_kernel_default(scenarios):
    s = sc(scenarios, "f_helper_killed")
    for kind, ops in (("bpf", "schedcp_vtime"), ("scx", "simple")):
        assert s[kind]["before_kill"] == {"state": "enabled", "ops": ops}
        assert s[kind]["after_kill"] == {"state": "disabled", "ops": ""}
        print(f"{kind}: SIGKILL of the helper → sched_ext disabled in {s[kind]['fallback_s']} s")
        assert s[kind]["fallback_s"] < 5
    assert s["bpf"]["kept_saved"] == "vtime"
    assert s["scx"]["child"]["scx_pids"] and s["scx"]["scx_pids_after"] == []
    assert ["disabled", "simple", "unregistered from user space"] in s["events"]
    # the control: without PR_SET_PDEATHSIG the orphaned scx_simple keeps scheduling (SIGPIPE
    # ignored in both runs: a printing scheduler would also die at its next write to the pipe)
    assert s["control"]["after_kill"] == {"state": "enabled", "ops": "simple"}
    assert s["control"]["scx_pids_after"] == s["control"]["child"]["scx_pids"]
    assert s["control"]["cleaned"]


@pytest.mark.vm
def test_g_restart_recovers_the_kept_scheduler(scenarios):
    s = sc(scenarios, "g_recover")
    assert s["before"]["state"] == "disabled"
    assert s["canary_before"]["state"] == "canary"
    assert s["kept"] == "vtime" and s["recovered"] == {"state": "enabled", "ops": "schedcp_vtime"}
    assert s["status"] == s["recovered"]
    assert s["canary_after"] == {"state": "reverted", "name": "scx_simple",
                                 "reason": "the helper restarted before it was kept"}
    assert s["after_revert"] == {"state": "disabled", "ops": ""}
    assert scenarios["end"] == {"state": "disabled", "ops": ""}


# -- issue 17: no ejection loops, no fighting over the CPU scheduler ---------------------------
def test_an_ejected_scheduler_is_suspended_until_the_user_resumes_it(fake, monkeypatch):
    """sched-ext/scx#3791: "watchdog ejects, the loader restarts it, repeat". The kernel's
    reason is kept; neither a redeploy nor a restore brings it back until ``resume``."""
    from schedcp_helper.deploy import Suspended
    from schedcp_helper.scxstate import ScxEvent

    d, world, _ = fake
    stall = ScxEvent("disabled", "ops_stally", reason="runnable task stall",
                     message="kworker/0:1[12] failed to run for 30.4s")
    monkeypatch.setattr(canary_mod, "kernel_events", lambda seq=None: [stall])
    good = d.deploy(Spec("bpf", "good"), CanaryParams(window_s=30), uid=0)
    d.keep(good.id)
    spec = Spec("scx", "stally", {"slice_us": 5000})
    dep = d.deploy(spec, CanaryParams(window_s=30, poll_s=0.01), uid=1000)
    world.update(state="disabled", ops="")
    assert _wait(lambda: dep.state == "reverted")
    assert world["ops"] == "ops_good"
    held = d.status()["suspended"]
    assert [h["name"] for h in held] == ["stally"]
    assert "runnable task stall" in held[0]["reason"] and "kworker/0:1" in held[0]["reason"]
    with pytest.raises(Suspended, match=r"stally is suspended: .*runnable task stall"):
        d.deploy(Spec("scx", "stally", {"slice_us": 5000}), CanaryParams(), uid=1000)
    assert world["ops"] == "ops_good"  # the refusal changed nothing
    # another configuration of it is another scheduler
    other = d.deploy(Spec("scx", "stally", {"slice_us": 2000}), CanaryParams(), uid=1000)
    d.revert("done", other.id)
    # suspended across a restart too, and a kept-then-suspended spec is not restored
    d2 = Deployer(d.store.path.parent, d.launch)
    assert d2.suspended.get(spec) is not None
    d2.kept = spec
    d2.recover()
    assert d2.current is None and "not restored: suspended" in d2.history[-1].reason
    d2.shutdown()
    again = d.deploy(Spec("scx", "stally", {"slice_us": 5000}), CanaryParams(), uid=1000,
                     resume=True)
    assert world["ops"] == "ops_stally" and again.state == "canary"
    assert d.status()["suspended"] == []


def test_an_ejection_without_the_schedulers_fault_suspends_nothing(fake):
    d, world, _ = fake
    dep = d.deploy(Spec("bpf", "fine"), CanaryParams(window_s=30, poll_s=0.01), uid=0)
    world.update(state="disabled", ops="")  # e.g. SysRq-S: no error event
    assert _wait(lambda: dep.state == "reverted")
    assert d.status()["suspended"] == []
    d.deploy(Spec("bpf", "fine"), CanaryParams(), uid=0)  # not refused


def test_a_scheduler_replaced_by_another_tool_is_recorded_not_fought(fake):
    """scx_loader (or anyone) attached its own after ours went: ours is 'replaced', the
    previous one is not forced back over it, and the listener hears 'replaced'."""
    d, world, events = fake
    good = d.deploy(Spec("bpf", "good"), CanaryParams(window_s=30), uid=0)
    d.keep(good.id)
    dep = d.deploy(Spec("bpf", "mine"), CanaryParams(window_s=30, poll_s=0.01), uid=0)
    world.update(state="enabled", ops="lavd")  # another tool's scheduler now
    assert _wait(lambda: dep.state == "replaced")
    assert dep.reason.startswith("replaced by "), dep.reason
    assert "(lavd)" in dep.reason
    assert world["ops"] == "lavd" and d.current is None  # nothing of ours launched over it
    assert _wait(lambda: events[-1] == ("replaced", "mine", "replaced")), events


def test_states_are_an_enum_and_plain_strings_on_disk(fake, tmp_path):
    """state.json and D-Bus carry the same strings as before the enum; loading gives members."""
    from schedcp_helper.records import deployment_from_json
    from schedcp_helper.states import State

    d, _, _ = fake
    dep = d.deploy(Spec("bpf", "x"), CanaryParams(window_s=30), uid=0)
    d.keep(dep.id)
    raw = json.loads((tmp_path / "state" / "state.json").read_text())
    assert raw["history"][-1]["state"] == "kept"
    _, history = deploy_mod.Store(tmp_path / "state").load()
    assert history[-1].state is State.KEPT and history[-1].state == "kept"
    with pytest.raises(ValueError, match="unknown deployment state"):
        deployment_from_json({**raw["history"][-1], "state": "limbo"})
