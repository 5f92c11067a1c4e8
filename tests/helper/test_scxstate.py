"""sched_ext state and kernel-log events: parsing of 6.12's formats, and a real stall ejection."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from schedcp_helper.scxstate import (
    LogRecord,
    ScxState,
    parse_dmesg,
    parse_events,
    parse_kmsg,
    read_kmsg,
    read_state,
)
from tests.fixtures.schedulers import compile_fixture, run_in_guest


def test_missing_sysfs_means_no_sched_ext(tmp_path):
    s = read_state(tmp_path / "nope")
    assert s == ScxState(supported=False) and not s.enabled


def test_sysfs_attributes_are_read(tmp_path):
    root = tmp_path / "sched_ext"
    (root / "root").mkdir(parents=True)
    for name, text in {"state": "enabled\n", "enable_seq": "3\n", "nr_rejected": "1\n",
                       "hotplug_seq": "0\n", "switch_all": "1\n"}.items():
        (root / name).write_text(text)
    (root / "root" / "ops").write_text("simple\n")
    assert read_state(root) == ScxState(True, "enabled", "simple", 3, 1, 0, True)
    assert read_state(root).enabled


def test_older_kernels_missing_attributes_are_tolerated(tmp_path):
    (tmp_path / "state").write_text("disabled\n")
    s = read_state(tmp_path)
    assert (s.supported, s.state, s.ops, s.enable_seq, s.switch_all) == (
        True, "disabled", "", None, None)


DMESG = """\
[    1.000000] random line
[    4.398867] sched_ext: BPF scheduler "fixture_tunable" enabled
[    4.737445] sched_ext: BPF scheduler "fixture_tunable" disabled (unregistered from user space)
[    5.100000] sched_ext: BPF scheduler "simple" enabled (partial)
[    9.000000] sched_ext: BPF scheduler "simple" disabled (runnable task stall)
[    9.000001] sched_ext: simple: kworker/u4:1[42] failed to run for 1.532s
[    9.000002]   scx_watchdog_workfn+0x15b/0x1a0
[   10.000000] sched_ext: BPF scheduler "qmap" enabled
[   11.000000] sched_ext: BPF scheduler "qmap" disabled (scx_bpf_error)
[   11.000001] sched_ext: qmap: invalid CPU 7 for task 12
[   12.000000] sched_ext: BPF scheduler "x" enabled
[   12.500000] sched_ext: BPF scheduler "x" disabled (unregistered from BPF)
[   12.500001] sched_ext: x: not an error line for non-error exits
"""


def test_events_from_dmesg_with_reasons():
    events = parse_events(parse_dmesg(DMESG))
    got = [(e.kind, e.ops, e.reason, e.message, e.partial) for e in events]
    assert got == [
        ("enabled", "fixture_tunable", "", "", False),
        ("disabled", "fixture_tunable", "unregistered from user space", "", False),
        ("enabled", "simple", "", "", True),
        ("disabled", "simple", "runnable task stall", "kworker/u4:1[42] failed to run for 1.532s",
         False),
        ("enabled", "qmap", "", "", False),
        ("disabled", "qmap", "scx_bpf_error", "invalid CPU 7 for task 12", False),
        ("enabled", "x", "", "", False),
        ("disabled", "x", "unregistered from BPF", "", False),
    ]
    assert events[1].time == pytest.approx(4.737445)
    stall = events[3]
    assert stall.error and not events[1].error
    assert "watchdog timeout" in stall.explanation and "kworker/u4:1[42]" in stall.explanation
    assert "SCHED_EXT tasks only" in events[2].explanation
    assert "process detached or exited" in events[1].explanation


def test_unknown_reason_is_passed_through():
    [ev] = parse_events([LogRecord('sched_ext: BPF scheduler "y" disabled (<UNKNOWN>)')])
    assert ev.reason == "<UNKNOWN>" and "(<UNKNOWN>)" in ev.explanation


def test_kmsg_record_parsing():
    rec = parse_kmsg(b'3,812,9000123,-,caller=T1;sched_ext: BPF scheduler "s" enabled\n'
                     b" SUBSYSTEM=x\n")
    assert rec == LogRecord('sched_ext: BPF scheduler "s" enabled', 9.000123, 812)
    assert parse_kmsg(b"garbage") is None


def test_kmsg_read_does_not_block(tmp_path):
    fifo_like = tmp_path / "kmsg"  # a regular file: reads end at EOF instead of EAGAIN
    fifo_like.write_bytes(b"6,1,10,-;hello\n")
    assert read_kmsg(path=str(fifo_like)) == [LogRecord("hello", 1e-5, 1)]
    assert read_kmsg(after_seq=1, path=str(fifo_like)) == []


GUEST_SCRIPT = r'''
import json, subprocess, time
from schedcp_helper.loader import BpfScheduler
from schedcp_helper.scxstate import kernel_events, last_seq, read_state
R = {"before": read_state().__dict__}
cursor = last_seq()
with BpfScheduler() as s:
    s.open("stall.bpf.o")
    s.load()
    t0 = time.monotonic()
    s.attach()
    R["attached"] = read_state().__dict__   # may already be ejected on a slow guest
    while read_state().state != "disabled" and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    R["ejected_after_s"] = time.monotonic() - t0
    R["after"] = read_state().__dict__
    R["events"] = [dict(e.__dict__, explanation=e.explanation) for e in kernel_events(cursor)]

cursor = last_seq()                     # the scheduler gives up through scx_bpf_error()
with BpfScheduler() as s:
    s.open("error.bpf.o")
    s.load()
    t0 = time.monotonic()
    s.attach()
    busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(3)]
    while read_state().state != "disabled" and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    for b in busy:
        b.kill()
        b.wait()
    R["error_s"] = time.monotonic() - t0
    R["error_events"] = [dict(e.__dict__, explanation=e.explanation)
                         for e in kernel_events(cursor)]
json.dump(R, open("results.json", "w"))
'''


@pytest.fixture(scope="module")
def stall_and_error(vm_kit, tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("scxstate")
    compile_fixture("stall", vm_kit, tmp_path)
    compile_fixture("error", vm_kit, tmp_path)
    (tmp_path / "guest.py").write_text(GUEST_SCRIPT)
    result, output = run_in_guest(vm_kit, tmp_path, f"{sys.executable} guest.py", timeout=180)
    assert result.returncode == 0, output
    return json.loads(Path(tmp_path / "results.json").read_text())


@pytest.mark.vm
def test_real_stall_ejection_is_reported_with_its_reason(stall_and_error):
    r = stall_and_error
    print(f"stall fixture ejected {r['ejected_after_s']:.2f} s after attach (timeout_ms=1000)")
    assert r["before"]["state"] == "disabled" and r["before"]["supported"]
    assert r["after"]["state"] == "disabled"
    assert r["after"]["enable_seq"] == r["before"]["enable_seq"] + 1
    evs = r["events"]
    assert [(e["kind"], e["ops"]) for e in evs] == [("enabled", "fixture_stall"),
                                                   ("disabled", "fixture_stall")]
    stall = evs[1]
    assert stall["reason"] == "runnable task stall"
    assert "failed to run for" in stall["message"] or "watchdog failed" in stall["message"]
    assert "watchdog timeout" in stall["explanation"]
    assert stall["seq"] > evs[0]["seq"]
    print("stall:", stall["explanation"])


@pytest.mark.vm
def test_real_scx_bpf_error_is_reported_with_the_schedulers_message(stall_and_error):
    evs = stall_and_error["error_events"]
    assert [(e["kind"], e["ops"]) for e in evs] == [("enabled", "fixture_error"),
                                                   ("disabled", "fixture_error")]
    assert evs[1]["reason"] == "scx_bpf_error"
    assert evs[1]["message"] == "fixture gives up after 20 enqueues"
    assert "reported an error itself" in evs[1]["explanation"]
    print(f"scx_bpf_error ejection {stall_and_error['error_s']:.2f} s after attach")
