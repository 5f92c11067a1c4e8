"""``schedcp-helper``, the root CLI: verify on the host (its trial boots the micro-VM), argument
errors, and load/unload inside the guest (one boot for all of it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedcp_helper.core import TRUSTED_SCX_DIRS_ENV
from tests.fixtures.schedulers import run_in_guest
from tests.fixtures.scx_examples import build_examples

ROOT = Path(__file__).resolve().parents[2]
HELPER = str(Path(sys.executable).with_name("schedcp-helper"))
HOST_HAS_SCX = Path("/sys/kernel/sched_ext").is_dir()


def helper(state: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([HELPER, "--state-dir", str(state), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """Shared by the module: the guest's load finds the host's verdict for vtime cached."""
    return tmp_path_factory.mktemp("cli") / "state"


@pytest.mark.vm
def test_verify_policy_json_gives_a_token(state):
    t0 = time.monotonic()
    r = helper(state, "verify", "--policy", "vtime", "--json")
    print(f"verify --policy vtime: {time.monotonic() - t0:.1f} s (boots the micro-VM)")
    if r.returncode == 1 and json.loads(r.stdout)["failed_stage"] == "dynamic":
        # the workload judge is timing-based and the guest shares two busy cores: one retry,
        # without the cached verdict (it would answer the same)
        print(f"refused at dynamic, retrying once: {json.loads(r.stdout)['stages'][-1]}")
        shutil.rmtree(state / "verdicts")
        r = helper(state, "verify", "--policy", "vtime", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["ok"] is True and rep["failed_stage"] is None
    assert [s["name"] for s in rep["stages"]] == [
        "input", "compile", "static", "kernel-verifier", "dynamic", "token"]
    assert rep["token"].count(".") >= 1 and len(rep["artifact"]) == 64


def test_verify_bad_source_is_refused_at_static_naming_the_check(tmp_path):
    r = helper(tmp_path, "verify", "--source",
               "tests/fixtures/bad_schedulers/enqueue_no_dispatch.bpf.c")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "=> refused at static" in r.stdout
    assert "static           fail" in r.stdout and "enqueue-dispatches:" in r.stdout
    assert "lossy_enqueue can return without dispatching" in r.stdout
    assert "Traceback" not in r.stderr


def test_verify_out_of_bounds_tunable_is_refused_at_input(tmp_path):
    r = helper(tmp_path, "verify", "--policy", "vtime", "--set", "slice_us=1", "--json")
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["ok"] is False and rep["failed_stage"] == "input" and rep["token"] == ""
    assert rep["stages"][0]["message"] == "slice_us: 1 us is outside 100..100000 us"


@pytest.mark.parametrize(("args", "message"), [
    (["verify", "--policy", "vtime", "--set", "slice_us"],
     "schedcp-helper verify: --set wants NAME=VALUE, got 'slice_us'"),
    (["verify", "--policy", "nosuch"], "schedcp-helper verify: no policy named 'nosuch'; known:"),
    (["verify", "--source", "/nonexistent/x.bpf.c"],
     "schedcp-helper verify: [Errno 2] No such file or directory: '/nonexistent/x.bpf.c'"),
    (["verify"], "error: one of the arguments --policy --source is required"),
    (["verify", "--policy", "vtime", "--source", "x.bpf.c"], "not allowed with argument"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["load", "--policy", "vtime", "--canary", "0"], None),
])
def test_bad_arguments_exit_2_with_one_clear_line(tmp_path, args, message):
    r = helper(tmp_path, *args, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    if message is None:  # load: refused before anything runs, whichever check comes first
        assert last.startswith("schedcp-helper load: ") and len(r.stderr.splitlines()) == 1
        return
    assert message in last
    if not last.startswith("usage:") and "error:" not in last:  # ours: exactly one line
        assert len(r.stderr.strip().splitlines()) == 1


def test_state_on_a_host_without_sched_ext_says_so(tmp_path):
    r = helper(tmp_path, "state")
    assert r.returncode == 0
    if HOST_HAS_SCX:
        print("the host has sched_ext: state prints it instead")
        assert r.stdout.startswith("sched_ext: ")
    else:
        assert r.stdout.strip() == ("this kernel has no sched_ext (run the helper's checks in "
                                    "`schedcp vm`)")
        load = helper(tmp_path, "load", "--policy", "vtime")
        assert load.returncode == 2  # refused up front, no verification boot for nothing
        assert "this kernel has no sched_ext" in load.stderr


GUEST = r"""
H="{helper} --state-dir {state}"
st() {{ cat /sys/kernel/sched_ext/state; }}
load1() {{
  $H load --policy vtime --hold 3 --canary 1 > load1.out 2> load1.err; echo $? > load1.rc
}}
load1
if grep -q "refused at dynamic" load1.err; then  # timing-based judge, busy cores: one retry
  echo "load refused at dynamic, retrying once:"; cat load1.err; rm -rf {state}/verdicts; load1
fi
st > after1.state
$H load --scx scx_simple --canary 1 > load2.out 2> load2.err &
holder=$!
for i in $(seq 600); do grep -q '"deployed"' load2.out && break; sleep 0.1; done
st > during2.state
sleep 0.5
$H unload > unload.out 2>&1; echo $? > unload.rc
wait $holder; echo $? > load2.rc
st > after2.state
$H unload > unload2.out 2>&1; echo $? > unload2.rc
$H state --json > state.json
"""


@pytest.mark.vm
def test_load_and_unload_in_the_guest(vm_kit, state, tmp_path):
    bindir = build_examples(vm_kit)
    t0 = time.monotonic()
    result, output = run_in_guest(
        vm_kit, tmp_path, GUEST.format(helper=HELPER, state=state), timeout=240,
        env={TRUSTED_SCX_DIRS_ENV: str(bindir)})
    print(f"guest: {time.monotonic() - t0:.1f} s")
    assert result.returncode == 0, output[-3000:]

    def read(name: str) -> str:
        return (tmp_path / name).read_text()

    # load --hold 3 --canary 1: deployed, the canary passes, released after the hold
    assert read("load1.rc").strip() == "0", read("load1.err")[-2000:]
    events = [json.loads(line) for line in read("load1.out").splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["deployed", "canary-passed", "reverted"]
    assert events[0]["ops"] == "schedcp_vtime"
    assert events[-1]["reason"] == "released by schedcp-helper load"
    assert read("after1.state").strip() == "disabled"
    # load --scx ... & then unload: the holder lets go on SIGTERM
    assert read("during2.state").strip() == "enabled"
    assert read("unload.rc").strip() == "0" and "asked" in read("unload.out")
    assert read("load2.rc").strip() == "0", read("load2.err")[-2000:]
    kinds = [json.loads(line)["event"] for line in read("load2.out").splitlines()]
    assert kinds[0] == "deployed" and kinds[-1] == "reverted"
    assert read("after2.state").strip() == "disabled"
    assert read("unload2.rc").strip() == "1"  # nothing held any more
    st = json.loads(read("state.json"))
    assert st["state"]["state"] == "disabled"
    assert [e["kind"] for e in st["events"]][-4:] == ["enabled", "disabled"] * 2
