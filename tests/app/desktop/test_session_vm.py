"""The desktop session in the sched_ext micro-VM, one boot: a profiled probe program starts →
its scheduler is applied (sched_ext enabled) → the "Applied" notification is shown by a real
dunst → its Revert action, invoked through dunst, reverts (sched_ext disabled); with another
scheduler kept before, the probe's exit brings that one back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.fixtures.scx_examples import build_examples

GUEST_SCRIPT = Path(__file__).with_name("guest_session.py")


@pytest.mark.vm
def test_profile_applied_reverted_from_notification_and_restored_on_exit(guest, vm_kit):
    bindir = build_examples(vm_kit)
    r = guest(f"{sys.executable} {GUEST_SCRIPT} {bindir}", timeout=300,
              env={"PYTHONUNBUFFERED": "1"})
    print(r.output[-3000:])
    assert (r.out_dir / "session.json").is_file(), r.output[-4000:]
    data = json.loads((r.out_dir / "session.json").read_text())
    assert "error" not in data, data["error"]
    assert r.result.returncode == 0
    assert data["connected"] == {"state": "default", "problem": "", "notifications": True,
                                 "watch_error": ""}

    a = data["rounds"]["a"]
    assert a["before"] == ["disabled", ""]
    assert a["after_apply"] == ["enabled", "simple"]
    assert a["state_after_apply"] == "canary"
    assert a["notification"]["summary"] == "scx_simple now runs for probe-app"
    assert a["notification"]["actions"] == {"revert": "Undo", "keep": "Keep"}
    assert a["after_revert"] == ["disabled", ""]  # reverted by the notification's action
    assert a["reverted_event"]["automatic"] is False
    assert a["state_after_revert"] == "default"
    assert a["after_exit"] == ["disabled", ""]  # the exit had nothing left to restore
    h = [x for x in a["history"] if x["id"] == a["dep_id"]]
    assert h and h[0]["state"] == "reverted" and h[0]["source"] == "profile"
    assert "user (notification)" in h[0]["reason"] and h[0]["app"] == "probe-app"

    (b,) = data["rounds"]["b"]
    assert b["before"] == ["enabled", "qmap"]
    assert b["after_apply"] == ["enabled", "simple"]
    assert b["after_exit"] == ["enabled", "qmap"]  # the previous scheduler is back
    assert data["failed_events"] == [] and data["notices"] == []
    print(f"exec → profile applied: {a['applied_s']:.2f} s / {b['applied_s']:.2f} s "
          f"(the helper's Switch {b['manager_latency_s']:.2f} s, TCG); Revert action → "
          f"disabled {a['disabled_s']:.2f} s; exit → previous back {b['previous_back_s']:.2f} s")
