"""The Python loader: tunables into .rodata, verifier logs, attach/detach, kernel fallback.

Host tests need no kernel (libbpf parses the object); the VM tests share one boot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from schedcp_helper import libbpf as lb
from schedcp_helper.loader import BpfScheduler, LoaderError, main
from tests.fixtures.schedulers import compile_fixture, libbpf_path, run_in_guest

GUEST_SCRIPT = r'''
import json, os, subprocess, sys, time
from schedcp_helper.loader import BpfScheduler, LoaderError, VerifierError
from schedcp_helper.scxstate import kernel_events, last_seq, read_state

BPFTOOL = sys.argv[1]
R = {}

def state():
    s = read_state()
    return [s.state, s.ops]

def bss():
    out = subprocess.run([BPFTOOL, "-j", "map", "dump", "name", "tunable.bss"],
                         capture_output=True, text=True).stdout
    return {k: v for d in json.loads(out)[0]["formatted"]["value"][".bss"] for k, v in d.items()}

R["initial_state"] = state()
with BpfScheduler() as s:                                   # 1. tunables and a hint
    s.open("tunable.bpf.o")
    s.set_tunables({"slice_us": 12345, "boost": True, "nice_bias": -42})
    R["tunables"] = {k: list(v) for k, v in s.tunables().items()}
    s.load()
    s.update_map("hints", os.getpid(), 4242)
    R["ops"] = s.attach()
    R["attached_state"] = state()
    busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
    for _ in range(20):  # with both CPUs busy, our wake-ups go through ops.enqueue()
        time.sleep(0.02)
    for b in busy:
        b.kill()
        b.wait()
    R["bss"] = bss()
    try:
        s.set_tunables({"slice_us": 1})
    except LoaderError as e:
        R["set_after_load"] = str(e)
    s.detach()
    R["detached_state"] = state()

try:                                                        # 2. the verifier says no
    with BpfScheduler() as s:
        s.open("reject.bpf.o")
        s.load()
    R["reject"] = None
except VerifierError as e:
    R["reject"] = {"log": e.log, "libbpf": e.libbpf_messages, "errno": e.errno, "str": str(e)}
R["after_reject_state"] = state()

cursor = last_seq()                                         # 3. kill -9 of the CLI loader
t0 = time.monotonic()
p = subprocess.Popen([sys.executable, "-m", "schedcp_helper.loader", "tunable.bpf.o",
                      "--set", "slice_us=777", "--hint", f"{os.getpid()}=5",
                      "--until-stdin-closes"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
R["cli_line"] = json.loads(p.stdout.readline())
R["cli_start_s"] = time.monotonic() - t0
R["cli_state"] = state()
R["cli_bss"] = bss()
os.kill(p.pid, 9)
p.wait()
t1 = time.monotonic()
while read_state().state != "disabled" and time.monotonic() - t1 < 30:
    time.sleep(0.01)
R["fallback_s"] = time.monotonic() - t1
R["after_kill_state"] = state()
R["cli_rc"] = p.returncode
R["events"] = [e.__dict__ for e in kernel_events(cursor)]
json.dump(R, open("results.json", "w"))
'''


@pytest.fixture(scope="module")
def host_lib(vm_kit) -> lb.Libbpf:
    return lb.open_library(libbpf_path(vm_kit))


@pytest.fixture(scope="module")
def objs(vm_kit, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fixtures")
    for name in ("tunable", "reject"):
        compile_fixture(name, vm_kit, out)
    return out


def test_tunables_are_read_from_rodata_btf(host_lib, objs):
    with BpfScheduler(host_lib) as s:
        s.open(objs / "tunable.bpf.o")
        assert s.tunables() == {"slice_us": (8, 5000), "boost": (1, False),
                                "nice_bias": (4, -3), "small": (1, 7)}
        s.set_tunables({"slice_us": 20000, "boost": True, "nice_bias": -2**31, "small": 255})
        assert s.tunables() == {"slice_us": (8, 20000), "boost": (1, True),
                                "nice_bias": (4, -2**31), "small": (1, 255)}
        assert s.ops_name() == "fixture_tunable"


@pytest.mark.parametrize(("values", "error"), [
    ({"nope": 1}, "unknown tunable.*nope.*known: boost, nice_bias, slice_us, small"),
    ({"small": 256}, r"small \(u8\) cannot hold 256"),
    ({"nice_bias": 2**31}, r"nice_bias \(s32\) cannot hold"),
    ({"slice_us": -1}, r"slice_us \(u64\) cannot hold -1"),
    ({"slice_us": 2**64}, "cannot hold"),
    ({"boost": 2}, "boost is a bool"),
    ({"slice_us": "5"}, "slice_us is an integer"),
    ({"slice_us": True}, "slice_us is an integer"),
])
def test_bad_tunables_are_refused_and_nothing_is_written(host_lib, objs, values, error):
    with BpfScheduler(host_lib) as s:
        s.open(objs / "tunable.bpf.o")
        with pytest.raises(LoaderError, match=error):
            s.set_tunables({"slice_us": 999, **values})
        assert s.tunables()["slice_us"] == (8, 5000)  # all-or-nothing


def test_order_of_operations_is_enforced(host_lib, objs):
    with BpfScheduler(host_lib) as s:
        with pytest.raises(LoaderError, match="open"):
            s.tunables()
        s.open(objs / "tunable.bpf.o")
        with pytest.raises(LoaderError, match="load"):
            s.attach()
        with pytest.raises(LoaderError, match="load"):
            s.update_map("hints", 1, 1)


def test_unreadable_object_is_a_loader_error(host_lib, tmp_path):
    bad = tmp_path / "bad.bpf.o"
    bad.write_bytes(b"\x7fELF garbage")
    with pytest.raises(LoaderError, match=r"cannot open .*bad\.bpf\.o(.|\n)*libbpf:"):
        BpfScheduler(host_lib).open(bad)


def test_cli_rejects_malformed_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["x.bpf.o", "--set", "slice_us"])
    assert "--set wants NAME=VALUE, got" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["x.bpf.o", "--hint", "abc=1"])


@pytest.fixture(scope="module")
def guest_run(vm_kit, objs):
    (objs / "guest.py").write_text(GUEST_SCRIPT)
    result, output = run_in_guest(vm_kit, objs, f"{sys.executable} guest.py {vm_kit.bpftool}",
                                  timeout=240)
    print(output)
    assert result.returncode == 0, output
    return json.loads((objs / "results.json").read_text()), output


@pytest.mark.vm
def test_tunables_and_hints_reach_the_running_scheduler(guest_run):
    r, _ = guest_run
    assert r["initial_state"] == ["disabled", ""]
    assert r["ops"] == "fixture_tunable"
    assert r["attached_state"] == ["enabled", "fixture_tunable"]
    assert r["tunables"]["slice_us"] == [8, 12345]
    bss = r["bss"]  # ops.init() copied the .rodata constants the verifier saw
    assert (bss["seen_slice_ns"], bss["seen_boost"], bss["seen_nice_bias"]) == (12345000, 1, -42)
    assert bss["hint_hits"] > 0 and bss["last_hint_ns"] == 4242
    assert "read-only once loaded" in r["set_after_load"]
    assert r["detached_state"][0] == "disabled"


@pytest.mark.vm
def test_verifier_rejection_carries_the_kernel_log(guest_run):
    r, _ = guest_run
    rej = r["reject"]
    assert rej is not None, "the verifier accepted a NULL dereference"
    assert rej["errno"] == 13  # EACCES: the verifier's refusal
    assert "R0 invalid mem access 'map_value_or_null'" in rej["log"]
    assert "call bpf_map_lookup_elem" in rej["log"]  # the instruction trace, verbatim
    assert "processed" in rej["log"]
    assert "prog 'reject_enqueue': BPF program load failed" in rej["libbpf"]
    assert "invalid mem access" in rej["str"]
    assert r["after_reject_state"] == ["disabled", ""]


@pytest.mark.vm
def test_killing_the_loader_falls_back_to_the_default_scheduler(guest_run):
    r, _ = guest_run
    assert r["cli_line"] == {"attached": True, "ops": "fixture_tunable"}
    assert r["cli_state"] == ["enabled", "fixture_tunable"]
    assert r["cli_bss"]["seen_slice_ns"] == 777000
    assert r["cli_rc"] == -9
    assert r["after_kill_state"] == ["disabled", ""]
    kinds = [(e["kind"], e["ops"], e["reason"]) for e in r["events"]]
    assert kinds == [("enabled", "fixture_tunable", ""),
                     ("disabled", "fixture_tunable", "unregistered from user space")]
    print(f"CLI loader start {r['cli_start_s']:.2f} s, fallback after kill -9 "
          f"{r['fallback_s']:.3f} s (guest, TCG)")
