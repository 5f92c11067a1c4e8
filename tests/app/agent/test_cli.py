"""`schedcp optimize` checks what every plan needs — the helper, and sched_ext to deploy on —
before it runs the user's command: on a machine that cannot deploy it says so at once, with the
exit code of `schedcp status` for the same situation, and the command never runs."""

from __future__ import annotations

import os
import subprocess
import sys


def optimize(tmp_path, bus: str, *extra: str) -> tuple[subprocess.CompletedProcess, bool]:
    marker = tmp_path / "ran"
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus, "XDG_DATA_HOME": str(tmp_path),
           "SCHEDCP_EMBEDDER": "hash"}
    r = subprocess.run([sys.executable, "-m", "schedcp", "optimize", "--goal", "throughput",
                        *extra, "--", "touch", str(marker)],
                       capture_output=True, text=True, env=env, timeout=120)
    return r, marker.exists()


def test_optimize_without_sched_ext_says_so_before_running_anything(stack, tmp_path):
    r, ran = optimize(tmp_path, stack.address)
    assert (r.returncode, r.stdout) == (5, ""), r.stderr
    assert not ran
    assert "cannot switch schedulers" in r.stderr and os.uname().release in r.stderr
    assert "schedcp demo" in r.stderr and "Traceback" not in r.stderr
    status = subprocess.run([sys.executable, "-m", "schedcp", "deploy", "--scx", "scx_simple"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": stack.address})
    assert status.returncode == r.returncode  # one exit code for one situation


def test_optimize_without_the_helper_says_so_before_running_anything(tmp_path):
    r, ran = optimize(tmp_path, f"unix:path={tmp_path}/no-bus")
    assert (r.returncode, r.stdout) == (3, ""), r.stderr
    assert not ran
    assert "helper" in r.stderr and "Traceback" not in r.stderr


def test_optimize_needs_exactly_one_target():
    r = subprocess.run([sys.executable, "-m", "schedcp", "optimize"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "--pid PID or -- CMD" in r.stderr


def test_an_unknown_model_warns_and_reports_tokens_instead_of_crashing(fake_api, tmp_path,
                                                                      caplog):
    """`--brain claude --model <new id>` used to end in a traceback (no price): now a warning,
    the run goes on, and the cost line gives tokens; a price puts dollars on them. In-process:
    on this host `schedcp optimize` stops before the loop (no sched_ext to deploy on)."""
    from schedcp.agent import AgentTools, BatchExecutor, LoopConfig, OptimizationLoop
    from schedcp.agent.claude import ClaudeBrain
    from schedcp.cli.agent import cost_line
    from schedcp.pricing import Price
    from tests.app.agent.fakeapi import end_turn, usage

    def run(**kw):
        tools = AgentTools(repo_path=tmp_path / "policies.db")
        try:
            brain = ClaudeBrain(tools, "dummy", model="claude-future-9", base_url=fake_api.url,
                                **kw)
            return OptimizationLoop(brain, tools, BatchExecutor(["true"]),
                                    LoopConfig(max_iterations=1)).run()
        finally:
            tools.close()

    fake_api.script = [end_turn("Nothing to try.", usage(1200, 30))]
    result = run()
    assert "no price for model 'claude-future-9'" in caplog.text
    line = cost_line(result.accounting, result.iterations)
    assert "cost: unknown (no price for claude-future-9" in line and "1200 in" in line, line
    assert result.stop_reason == "exhausted", result.message
    assert fake_api.requests[0]["model"] == "claude-future-9"

    fake_api.script = [end_turn("Nothing to try.", usage(1_000_000, 0))]
    result = run(price=Price.parse("3,15"))
    assert "cost: $3.0000" in cost_line(result.accounting, result.iterations)
    base = [sys.executable, "-m", "schedcp", "optimize", "--brain", "claude", "--model",
            "claude-future-9", "--max-iterations", "1"]
    env = {**os.environ, "ANTHROPIC_API_KEY": "dummy", "XDG_DATA_HOME": str(tmp_path)}
    r = subprocess.run([*base, "--price", "lots", "--", "true"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2 and "--price" in r.stderr and "Traceback" not in r.stderr


def test_one_policy_or_a_recheck_checks_its_arguments_then_the_machine(stack, tmp_path):
    """--policy/--tunable/--recheck: a bad name or tunable is exit 2 before anything runs; a
    good plan still stops at the missing sched_ext (exit 5) before the command runs."""
    from schedcp.cli.args import assignment

    given = ("slice_us=5000", "x=0x10", "on=True", "mode=fast")
    assert [assignment(t, "--tunable") for t in given] == [
        ("slice_us", 5000), ("x", 16), ("on", True), ("mode", "fast")]
    for extra, words in [(("--policy", "ljff"), "did you mean 'ljf'"),
                         (("--policy", "ljf", "--tunable", "slice_us"), "expected K=V"),
                         (("--tunable", "slice_us=1"), "goes with --policy"),
                         (("--policy", "ljf", "--recheck"), "exclude each other")]:
        r, ran = optimize(tmp_path, stack.address, *extra)
        assert (r.returncode, ran) == (2, False), (extra, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, r.stderr
    for extra in (("--policy", "ljf", "--tunable", "slice_us=5000"), ("--recheck",)):
        r, ran = optimize(tmp_path, stack.address, *extra)
        assert (r.returncode, ran) == (5, False), (extra, r.stderr)
        assert "cannot switch schedulers" in r.stderr
