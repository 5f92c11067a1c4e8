"""`schedcp demo`: the whole loop in the micro-VM (helper on the guest's own bus, offline brain)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.vm
def test_demo_runs_the_loop_in_the_guest_and_prints_before_after(vm_kit, tmp_path):
    r = subprocess.run([sys.executable, "-m", "schedcp", "demo", "--iterations", "3",
                        "--tasks", "40"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=2100)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out, _, latency = r.stdout.partition("\nlatency part: a second boot")
    print(r.stdout[-8000:])  # both tables and the reuse summary, for the issue notes (pytest -s)
    _check_latency_part(latency, r.stdout[-3000:])
    assert "system bus and root helper up" in out
    assert re.search(r"\[0\] batch workload .* warm-up run makespan [\d.]+s", out)
    assert re.search(r"\[[12]\] \S+ .*: makespan [\d.]+s \(median\)", out), out[-2000:]
    assert re.search(r"    trial \d+/\d+ \((baseline|candidate)\)", out)  # progress
    table = out.split("before/after", 1)[1]
    assert re.search(r"kernel default\s+[\d.]+s\s+1\.00x", table)
    # every scheduler with its interval and runs, or "no measurable effect"
    assert re.search(r"\n  \S+.*\s[\d.]+s\s+[\d.]+x  .*\d+\+\d+ runs\)",
                     table.split("kernel default", 1)[1])
    # the second run reuses the lesson: the recorded best first, and fewer iterations
    reuse = re.findall(r"run (\d): (\d+) iteration\(s\); first try (\S+)", out)
    assert [r[0] for r in reuse] == ["1", "2"], out[-2000:]
    (_, n1, _), (_, n2, first2) = reuse
    run1_stop = re.search(r"  run 1: .*; stop: (.*)", out).group(1)
    best = re.search(r"best: (\S+),", table)
    if best is None:
        # issue #12: a win must be significant. On a loaded host (other VMs on the same two
        # cores) the guest's run-to-run spread can reach 25-30 %, which hides even ljf's
        # ~30 % gain at 5+5 runs; the demo must then say so and keep nothing
        assert "none beat the kernel default measurably" in table, table
        assert "kept" not in run1_stop, run1_stop
        print("demo: no scheduler beat the kernel default measurably on this host, so the "
              "reuse of a stored win was not exercised in this run")
        return
    # the second run starts from the stored win and says whether it held, with its interval
    assert first2 == best.group(1), out[-2500:]
    run2 = out.split("run 2:", 1)[1]
    assert re.search(r"the stored effect (held|did not hold): then makespan .* runs\), now ",
                     run2), run2[-1500:]
    if "stored effect held" in run2:
        assert int(n2) < int(n1), out[-2500:]


def _check_latency_part(lat: str, tail: str) -> None:
    """The second boot, in virtual time: frames beside hogs, default vs interactive, A/B."""
    assert lat, "no latency part after the batch part:\n" + tail
    assert re.search(r"\[0\] warm-up run \(kernel default, not counted\): wake-up p99 "
                     r"[\d.]+ ms, deadline-miss ratio [\d.]+", lat), lat[-2000:]
    assert re.search(r"    trial \d+/\d+ \((baseline|candidate)\): [\d.]+ ms", lat)
    rows = re.findall(r"\n  (kernel default|interactive slice_us=6000)\s+([\d.]+)\s+([\d.]+)"
                      r"\s+([\d.]+) ms\s+([\d.]+)x  \((\d+) runs\)", lat)
    assert [r[0] for r in rows] == ["kernel default", "interactive slice_us=6000"], lat[-2000:]
    assert all(int(r[5]) >= 5 for r in rows)  # an exact 98 % interval needs 5+5 at least
    runs = r"\(\S+\u2026\S+ %, \d+\+\d+ runs\)"
    assert re.search(r"effect of interactive: (deadline-miss ratio [\u2212+]\d+ %|no measurable "
                     r"effect on deadline-miss ratio) " + runs, lat), lat[-1500:]
    # virtual time: the guest's clock counts instructions, so this gain does not depend on the
    # host's load (the probe's p99 repeats to the microsecond at 1 vCPU); a significant
    # improvement is the latency part's whole point
    assert re.search(r"effect of interactive: wake-up p99 \u2212\d+ % " + runs, lat), \
        lat[-1500:]
    assert re.search(r"latency part: \d+ s of wall time", lat)
