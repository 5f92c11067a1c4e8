"""The take-over/give-back cycle with a real scheduler in ONE micro-VM boot (issue 17): the
scx_loader stand-in attaches the kernel's scx_simple (as "scx_lavd", with arguments) first;
the helper names it, refuses to replace it silently, takes over through scx_loader's D-Bus API,
notices scx_loader's attempt to start again while ours runs, and gives it back with the same
arguments on revert. guest_coexist.py runs inside; these assert on its JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("guest_coexist.py")


@pytest.fixture(scope="module")
def cycle(vm_kit, tmp_path_factory):
    from schedcp_common.vm import kit_config, run
    from tests.fixtures.scx_examples import build_examples

    bindir = build_examples(vm_kit)
    out = tmp_path_factory.mktemp("coexist")
    chunks: list[bytes] = []
    cfg = kit_config(vm_kit, out_dir=out, timeout=420,
                     env={"SCHEDCP_ROOT": str(ROOT), "PYTHONPATH": str(ROOT),
                          "SCHEDCP_LIBBPF": str(vm_kit.libbpf)})
    result = run(f"{sys.executable} {SCRIPT} {bindir}", cfg, chunks.append)
    output = b"".join(chunks).decode(errors="replace")
    path = out / "coexist.json"
    assert path.is_file(), f"no result (rc {result.returncode}):\n{output[-4000:]}"
    data = json.loads(path.read_text())
    print(json.dumps({"timings": data["timings"],
                      **{k: {kk: vv for kk, vv in v.items() if kk.endswith("_s")}
                         for k, v in data["steps"].items() if isinstance(v, dict)}}))
    return data


def ok(data: dict, name: str) -> dict:
    s = data["steps"].get(name)
    assert s is not None and "error" not in s, (name, s, data.get("helper_log"))
    return s


@pytest.mark.vm
def test_a_scheduler_scx_loader_started_is_named_with_its_owner(cycle):
    s = ok(cycle, "loader_starts")
    assert s["sysfs"] == {"state": "enabled", "ops": "simple"}
    st = s["status"]
    assert st["attached_owner"] == "scx_loader", st
    assert st["others"].startswith("scx_lavd via scx_loader"), st  # found by the link holder
    assert st["attached_pid"] > 0 and "scx_loader" in st["tuners_active"]


@pytest.mark.vm
def test_replacing_it_silently_is_refused(cycle):
    s = ok(cycle, "refused")
    assert s["refused_with"] == "org.schedcp.Helper1.Error.OtherScheduler", s
    assert s["message"].startswith("scx_lavd via scx_loader holds the CPU scheduler")
    assert s["sysfs"] == {"state": "enabled", "ops": "simple"}  # still theirs
    assert [c[0] for c in s["calls"]] == ["StartSchedulerWithArgs"]


@pytest.mark.vm
def test_take_over_goes_through_scx_loaders_api(cycle):
    s = ok(cycle, "take_over")
    assert s["sysfs"] == {"state": "enabled", "ops": "qmap"}, s
    assert s["calls"][-1] == ["StopScheduler"]
    st = s["status"]
    assert st["attached_owner"] == "schedcp" and st["taken_over"] == "scx_lavd from scx_loader"


@pytest.mark.vm
def test_scx_loader_starting_again_is_noticed_not_fought(cycle):
    s = ok(cycle, "conflict")
    assert s["noticed_s"] is not None, s
    assert "scx_loader tried to start scx_lavd" in s["status"]["conflict"]
    assert s["sysfs"] == {"state": "enabled", "ops": "qmap"}  # ours still runs


@pytest.mark.vm
def test_revert_gives_scx_loader_its_scheduler_back_with_the_same_arguments(cycle):
    s = ok(cycle, "give_back")
    assert s["sysfs"] == {"state": "enabled", "ops": "simple"}, s
    assert s["calls"][-1] == ["SwitchSchedulerWithArgs", "scx_lavd", ["-f"]], s["calls"]
    assert s["status"]["given_back"] == "gave scx_lavd back to scx_loader"
    assert s["status"]["attached_owner"] == "scx_loader" and not s["takeover_file"]


@pytest.mark.vm
def test_a_stray_process_is_named_and_stopped_only_on_take_over_and_not_restarted(cycle):
    s = ok(cycle, "process_owner")
    b = s["before"]
    assert b["attached_owner"] == "process" and b["attached_pid"] == s["pid"], b
    # the stand-in still runs (idle): "; also active: scx_loader" follows
    assert b["others"].startswith(f"simple via scx_simple (pid {s['pid']})"), b
    assert s["ours_s"] is not None and s["stray_rc"] is not None  # SIGTERM ended it
    assert s["after"]["given_back"] == (f"scx_simple (process, pid {s['pid']}) was stopped; "
                                        "SchedCP cannot restart it"), s["after"]
    assert s["sysfs"]["state"] == "disabled"


@pytest.mark.vm
def test_a_packaged_scheduler_scx_loader_supports_is_run_by_it_and_stopped_through_it(cycle):
    s = ok(cycle, "via_loader")
    st = s["status"]
    assert s["calls"][0] == ["SwitchSchedulerWithArgs", "scx_simple", ["-f"]], s["calls"]
    assert s["holder_parent_is_loader"], s  # scx_loader's child, not the helper's
    assert (st["attached_via"], st["deployment_via"], st["attached_owner"]) == (
        "scx_loader", "scx_loader", "schedcp"), st
    assert st["others"].startswith("scx_simple via scx_loader for SchedCP"), st["others"]
    assert s["passed_s"] is not None, s  # the canary ran and passed
    assert s["calls"][-1] == ["StopScheduler"] and s["sysfs"]["state"] == "disabled", s
    assert s["history"][-1]["via"] == "scx_loader", s["history"]


@pytest.mark.vm
def test_scx_loader_restarting_our_scheduler_trips_the_guard_and_ends_its_retries(cycle):
    s = ok(cycle, "via_loader_restarted")
    assert s["tripped_s"] is not None and s["state"] == "reverted", s
    assert s["calls"][0][0] == "SwitchSchedulerWithArgs" and s["calls"][-1] == [
        "StopScheduler"], s["calls"]
    assert s["sysfs"]["state"] == "disabled", s
