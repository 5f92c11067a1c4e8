"""Generated schedulers through the whole loop in ONE micro-VM boot (guest_generated.py runs
inside it): one written on the Claude path (real SDK, fake Messages API, thinking blocks) and
one composed offline from policies/primitives. Each is verified in the guest's sched_ext
kernel, deployed, measured against the kernel default, promoted when Learning judges it
improved, and chosen first by the next run of the same workload."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("guest_generated.py")
# SCHEDCP_LONG_VM=short: a short long-tail batch (12 jobs, one 16x longer than the others: ~3 s
# a run under the default in the 2-vCPU TCG guest, ideally 24 % shorter longest-first); it has
# not yet passed on a quiet host, so CI does not run it. The trial rules are the product's own
# (5+5 runs at least, a 98 % interval clear of 2 %), so the four loops cost at least 4 x 11
# batch runs. `make test-long` (SCHEDCP_LONG_VM=1) runs the demo-sized batch (24 jobs, ~20 s a
# run: 15-25 min).
LONG = os.environ.get("SCHEDCP_LONG_VM") == "1"
pytestmark = pytest.mark.skipif(
    not os.environ.get("SCHEDCP_LONG_VM"),
    reason="generated schedulers through the whole loop take 15-25 min in the micro-VM; "
    "`make test-long` runs them (SCHEDCP_LONG_VM=1, or =short for the short batch)")
# a developer may run one part alone (never set in CI: both parts run there)
PARTS = set(os.environ.get("SCHEDCP_PARTS", "claude,composer").split(","))
BATCH = "--tasks 24" if LONG else "--tasks 12 --short-units 1 --long-factor 16"


@pytest.fixture(scope="module")
def generated(vm_kit, tmp_path_factory):
    from schedcp_common.vm import kit_config, run
    from schedcp_common.workload.build import probe_binary

    out = tmp_path_factory.mktemp("generated")
    chunks: list[bytes] = []
    # a guard against a hung guest, not the expected time (~6 min quiet; a host at load 10+
    # with other guests stretches every TCG second)
    cfg = kit_config(vm_kit, out_dir=out, timeout=2400 if LONG else 1500,
                     env={"SCHEDCP_ROOT": str(ROOT), "PYTHONPATH": str(ROOT),
                          "SCHEDCP_LIBBPF": str(vm_kit.libbpf), "SCHEDCP_EMBEDDER": "hash",
                          "SCHEDCP_PROBE": str(probe_binary()), "PYTHONUNBUFFERED": "1",
                          "SCHEDCP_BATCH": BATCH,
                          "SCHEDCP_PARTS": ",".join(sorted(PARTS))})
    def out_chunk(chunk: bytes) -> None:  # kept, and live with `pytest -s`
        chunks.append(chunk)
        sys.stdout.write(chunk.decode(errors="replace"))
        sys.stdout.flush()

    t0 = time.monotonic()
    result = run(f"{sys.executable} {SCRIPT}", cfg, out_chunk)
    print(f"guest: {time.monotonic() - t0:.0f} s wall, boot included")
    output = b"".join(chunks).decode(errors="replace")
    path = out / "generated.json"
    assert path.is_file(), f"no result (rc {result.returncode}):\n{output[-4000:]}"
    data = json.loads(path.read_text())
    assert not data["errors"], "\n".join(data["errors"]) + data.get("helper_log", "")
    print(json.dumps(data["timings"]))
    return data


def _steps(run: dict, role: str) -> list[dict]:
    return [s for s in run["steps"] if s["role"] == role]


def _measured(run: dict) -> tuple[dict, float, dict]:
    """The first execution step: the outcome, its improvement and the lesson."""
    ex = _steps(run, "execution")[0]
    lesson = _steps(run, "learning")[0]["lesson"]
    base = _steps(run, "observation")[0]["baseline"]["makespan_s"]
    assert ex["outcome"]["after"], f"not measured: {json.dumps(ex['outcome'])[-1500:]}"
    ev = ex["outcome"]["trials"]
    print(f"warm-up {base:.3f} s; median default {ev['median_a']:.3f} s -> "
          f"{ev['median_b']:.3f} s, ratio {ev['ratio']:.3f} (98 % interval "
          f"{ev['ratio_low']:.3f}-{ev['ratio_high']:.3f}, {ev['n_a']}+{ev['n_b']} runs; "
          f"A {ev['a']}, B {ev['b']}); lesson {lesson['outcome']}: {lesson['note'][:160]}")
    return ex, ex["improvement"], lesson


def _cost_per_iteration(run: dict) -> list[float]:
    """Dollars each iteration cost (the steps carry the optimization's running total)."""
    out, before = [], 0.0
    for s in run["steps"]:
        if s["role"] in ("learning", "stop") and "cost_usd" in s:
            out.append(round(s["cost_usd"] - before, 6))
            before = s["cost_usd"]
    return out


@pytest.mark.vm
def test_claude_generated_scheduler_is_verified_deployed_measured_promoted_reused(generated):
    if "claude" not in PARTS:
        pytest.skip("SCHEDCP_PARTS excludes the Claude part (set to run the composer alone)")
    assert "claude_next" in generated["runs"] and "fake_api_requests" in generated, (
        f"the Claude part did not finish: {generated['timings']}")
    run = generated["runs"]["claude"]
    reqs = generated["fake_api_requests"]
    # the SDK sent the thinking blocks back verbatim (second request, assistant turn)
    replay = reqs[1]["messages"][1]["content"]
    assert [b["type"] for b in replay] == ["thinking", "redacted_thinking", "tool_use"]
    assert replay[0]["signature"].startswith("sig-")
    report = generated["claude_verify"]
    assert report["ok"] and report["handle"].startswith("gen_")
    assert {s["name"] for s in report["stages"]} >= {"static", "kernel-verifier", "dynamic"}
    submitted = reqs[2]["messages"][-1]["content"][0]
    assert report["handle"] in json.dumps(reqs[2]) and submitted["type"] == "tool_result"

    ex, _, lesson = _measured(run)
    assert ex["outcome"]["verified"] and ex["outcome"]["plan"]["source"]
    assert lesson["policy"] == report["handle"]
    assert lesson["outcome"] == "improved", lesson
    assert f"promoted as {report['handle']}" in lesson["note"]
    assert generated["promoted"][report["handle"]]["kind"] == "custom"
    print("transcript, request 2 (assistant turn replayed):\n"
          + json.dumps(replay, indent=1)[:700])
    from schedcp.pricing import PRICES_CHECKED

    per_iteration = _cost_per_iteration(run)
    total = run["accounting"]["total"]
    assert per_iteration and abs(sum(per_iteration) - total["cost_usd"]) < 1e-6
    assert per_iteration[0] > 0  # the generating iteration was priced (the default model)
    print(f"cost per iteration (prices checked {PRICES_CHECKED}): {per_iteration}; "
          f"total {json.dumps(total)}")

    nxt = generated["runs"]["claude_next"]
    plan = _steps(nxt, "planning")[0]["plan"]
    assert plan["policy"] == report["handle"] and plan["source"] is None  # from the history
    ex2 = _steps(nxt, "execution")[0]
    assert ex2["outcome"]["verified"] and ex2["outcome"]["after"]  # re-verified and ran


@pytest.mark.vm
def test_composed_scheduler_is_verified_deployed_measured_promoted_reused(generated):
    if "composer" not in PARTS:
        pytest.skip("SCHEDCP_PARTS excludes the composer part")
    assert "composer_next" in generated["runs"], (
        f"the composer part did not finish: {generated['timings']}")
    run = generated["runs"]["composer"]
    plan = _steps(run, "planning")[0]["plan"]
    assert plan["source"] and "SCHEDCP_OPS(longtail" in plan["source"]
    print(f"composed {plan['policy']} ({len(plan['source'])} bytes):\n{plan['source']}")
    ex, _, lesson = _measured(run)
    assert ex["outcome"]["verified"]
    assert lesson["outcome"] == "improved", lesson
    assert f"promoted as {plan['policy']}" in lesson["note"]
    assert generated["promoted"][plan["policy"]]["source"] == plan["source"]

    nxt = generated["runs"]["composer_next"]
    plan2 = _steps(nxt, "planning")[0]["plan"]
    assert plan2["policy"] == plan["policy"] and plan2["source"] is None
    ex2 = _steps(nxt, "execution")[0]
    assert ex2["outcome"]["verified"] and ex2["outcome"]["after"]
