"""End to end inside ONE micro-VM boot, with the helper on the guest's own system bus: verify →
deploy → canary → revert → history, the CLI, and a client that leaves before keep → reverted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("guest_e2e.py")


@pytest.fixture(scope="module")
def e2e(vm_kit, tmp_path_factory):
    from schedcp_common.vm import kit_config, run

    out = tmp_path_factory.mktemp("e2e")
    # fifo is verified in the guest itself (~50 s under TCG): a host-side verdict would not be
    # reused, its cache key names the kit's release, the guest's differs
    chunks: list[bytes] = []
    cfg = kit_config(vm_kit, out_dir=out, timeout=420,
                     env={"SCHEDCP_ROOT": str(ROOT), "PYTHONPATH": str(ROOT),
                          "SCHEDCP_LIBBPF": str(vm_kit.libbpf)})
    result = run(f"{sys.executable} {SCRIPT}", cfg, chunks.append)
    output = b"".join(chunks).decode(errors="replace")
    path = out / "e2e.json"
    assert path.is_file(), f"no result (rc {result.returncode}):\n{output[-4000:]}"
    data = json.loads(path.read_text())
    print(json.dumps(data["timings"]))
    return data


def _ok(data, name):
    step = data["steps"].get(name)
    assert step is not None and "error" not in step, (name, step, data.get("helper_log"))
    return step


@pytest.mark.vm
def test_status_in_guest(e2e):
    assert _ok(e2e, "status")["supported"] is True


@pytest.mark.vm
def test_verify_through_dbus(e2e):
    v = _ok(e2e, "verify")
    assert v["ok"] and ["token", "pass"] in [list(s) for s in v["stages"]]
    assert any(stage == "compile" for stage, _ in v["progress"])  # VerifyProgress arrived


@pytest.mark.vm
def test_deploy_canary_revert(e2e):
    d = _ok(e2e, "deploy")
    assert d["status"]["state"] == "enabled" and d["status"]["deployment"] == d["id"]
    assert d["passed"], "no DeploymentChanged(passed) signal"
    r = _ok(e2e, "revert")
    assert r["state"] == "reverted" and r["status"]["state"] == "disabled"
    hist = {h["id"]: h for h in _ok(e2e, "history")}
    assert hist[d["id"]]["state"] == "reverted"


@pytest.mark.vm
def test_hints_only_from_the_owner_and_only_where_a_hint_map_exists(e2e):
    h = _ok(e2e, "hints")
    # fifo has no expected_runtime map: a clear refusal, not a crash
    assert h["owner"]["error"] == "InvalidArgs" and "no runtime hints" in h["owner"]["message"]
    assert h["other"]["error"] == "NotAuthorized", h["other"]


@pytest.mark.vm
def test_cli_in_guest(e2e):
    c = _ok(e2e, "cli")
    assert c["status"]["rc"] == 0, c
    assert json.loads(c["status"]["stdout"])["supported"] is True
    assert c["history"]["rc"] == 0 and json.loads(c["history"]["stdout"])


@pytest.mark.vm
def test_client_leaving_before_keep_reverts(e2e):
    h = _ok(e2e, "hold")
    assert h["rc"] == 0 and h["id"], h
    assert h["reverted_signal"] and "went away" in h["reverted_signal"][1], h
    assert h["history"]["state"] == "reverted"
    assert h["status"]["state"] == "disabled"
