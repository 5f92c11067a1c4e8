"""Runs INSIDE the micro-VM (one boot), as root: the guest's own system bus + polkitd + the
helper, then four optimizations of a batch with a long tail, each a real loop (verify in the
guest's sched_ext kernel → deploy with a canary → measure against the kernel default → keep or
revert → learn):

1. the Claude brain, real anthropic SDK, against the fake Messages API on the guest's
   loopback: it thinks (thinking + redacted-thinking blocks), reads ljf, writes a patched
   copy, verifies it (a handle comes back) and submits the handle;
2. the offline planner on the same workload: the promoted generated scheduler must come first
   (read back from the repository and verified again);
3. the offline composer on a second workload (the same probe under another name, so another
   workload key): longtail from policies/primitives;
4. the offline planner again on that workload: the composed one must come first.

Writes generated.json into the cwd (the host's test reads it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, os.environ["SCHEDCP_ROOT"])

R: dict = {"runs": {}, "timings": {}, "errors": []}
OUT = Path("generated.json")
PROBE = os.environ["SCHEDCP_PROBE"]
# the batch's shape (probe batch options): the host test picks a short one for every CI run
BATCH = os.environ.get("SCHEDCP_BATCH", "--tasks 24").split()
# which parts run (all by default): "claude" and/or "composer"
PARTS = set(os.environ.get("SCHEDCP_PARTS", "claude,composer").split(","))


T0 = time.monotonic()


def mark(what: str) -> None:
    """A timed line on the console (the host streams it) and in the timings."""
    R["timings"][what] = round(time.monotonic() - T0, 1)
    print(f"[{time.monotonic() - T0:6.1f}s] {what}", flush=True)


def save() -> None:
    OUT.write_text(json.dumps(R, indent=1, default=str))


def patched_ljf() -> str:
    """What the fake model "writes": ours, patched (longer batch slices, a sooner batch
    classification); still one file including only schedcp.bpf.h."""
    src = (Path(os.environ["SCHEDCP_ROOT"]) / "bpf" / "ljf.bpf.c").read_text()
    out = src.replace("const volatile u64 slice_us = 20000;",
                      "const volatile u64 slice_us = 30000;")
    assert out != src, "ljf.bpf.c changed: update the patch"
    return "/* generated: ljf with 30 ms batch slices */\n" + out


def _import_sdk() -> None:
    """The anthropic SDK (pydantic, httpx: hundreds of modules over the guest's 9p share)
    imports for minutes on a loaded host: it does so while the bus, polkitd and the helper
    start, which mostly wait on other processes."""
    import anthropic  # noqa: F401


def main() -> None:
    import threading

    sdk_import = threading.Thread(target=_import_sdk, daemon=True)
    sdk_import.start()
    from schedcp.agent import AgentTools, BatchExecutor, LoopConfig, OptimizationLoop
    from schedcp.agent.claude import ClaudeBrain
    from schedcp.agent.offline import OfflinePlanner
    from schedcp.repo import PolicyRepository
    from tests.app.agent.fakeapi import (
        FakeMessagesAPI,
        end_turn,
        redacted,
        thinking,
        thought_tool_use,
        usage,
    )
    from tests.dbus_stack import start_stack

    mark("imports")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    work = Path("/run/gen")  # SQLite and sockets: the guest's tmpfs, not the 9p share
    work.mkdir(parents=True, exist_ok=True)
    os.environ["SCHEDCP_STATE_DIR"] = str(work / "state")
    stack = start_stack(helper=False)
    stack.state_dir = work / "state"
    stack.start_helper(timeout=180)
    mark("stack")
    client = stack.client()
    repo = PolicyRepository.open(work / "policies.db", embedder="hash")
    mark("repository")
    tools = AgentTools(repo=repo, client=client)
    api = FakeMessagesAPI()
    api.start()
    source = patched_ljf()

    def write_code(body: dict) -> dict:
        return thought_tool_use("verify_source", {"source": source},
                                [thinking("Long tail: patch ljf's batch slice to 30 ms.")],
                                usage(3000, 2500, cache_read=3000))

    def submit(body: dict) -> dict:
        report = json.loads(body["messages"][-1]["content"][0]["content"])
        R["claude_verify"] = report
        return thought_tool_use("submit_plan", {"policy": "custom", "handle": report["handle"],
                                                "rationale": "ljf patched: 30 ms batch slices "
                                                             "for a long-tail batch"},
                                [thinking("It passed every stage; submit the handle.")],
                                usage(600, 200, cache_read=6000))

    api.script = [
        thought_tool_use("get_policy", {"name": "ljf"},
                         [thinking("A batch with one long job: start from ljf."), redacted()],
                         usage(2500, 300, cache_write=3000)),
        write_code, submit,
        end_turn("The generated scheduler is the best so far; nothing else to try.",
                 usage(900, 40, cache_read=6000)),
    ]

    def run(name: str, brain, workload: list[str], iterations: int) -> None:
        client.revert("", "the next run starts from the kernel default")
        t = time.monotonic()
        steps: list[dict] = []

        def step(s: dict) -> None:  # kept, and one line on the console (the host streams it)
            steps.append(s)
            what = s.get("line") or s.get("message") or (s.get("plan") or {}).get("policy", "")
            print(f"[{time.monotonic() - T0:6.1f}s] {name} {s['role']}: {str(what)[:100]}",
                  flush=True)

        try:
            cfg = LoopConfig(goal="throughput", max_iterations=iterations, patience=2,
                             canary_s=2)
            result = OptimizationLoop(brain, tools, BatchExecutor(workload), cfg, None,
                                      step).run()
            R["runs"][name] = {"stop": result.stop_reason, "message": result.message,
                               "best": result.best, "steps": steps,
                               "accounting": result.accounting}
        except Exception:
            R["errors"].append(f"{name}: {traceback.format_exc()[-3000:]}")
            R["runs"][name] = {"steps": steps}
        R["timings"][name] = round(time.monotonic() - t, 1)
        save()

    sdk_import.join()
    import anthropic

    sdk = anthropic.Anthropic(base_url=api.url, api_key="dummy", max_retries=0)
    mark("anthropic")
    workload = [PROBE, "batch", *BATCH, "--calibrate", "none"]
    try:
        if "claude" in PARTS:
            run("claude", ClaudeBrain(tools, "dummy", client=sdk, budget_usd=1.0), workload, 2)
            R["fake_api_requests"] = api.requests
            run("claude_next", OfflinePlanner(tools=tools), workload, 1)
        if "composer" not in PARTS:
            return
        other = work / "longtail-probe"  # another executable name: another workload key
        shutil.copy2(PROBE, other)
        workload2 = [str(other), "batch", *BATCH, "--calibrate", "none"]
        run("composer", OfflinePlanner(tools=tools, compose="always"), workload2, 1)
        # "auto": ljf fits a long-tail batch, so only the history can bring the composed one
        # back: by name, its code read from the repository and verified again
        run("composer_next", OfflinePlanner(tools=tools), workload2, 1)
        R["promoted"] = {n: {"kind": repo.get(n).kind, "source": repo.get(n).source}
                         for n in repo.names("custom")}
    finally:
        api.stop()
        client.close()
        repo.close()
        R["helper_log"] = stack.log.read_text()[-3000:] if stack.log else ""
        stack.close()
        save()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        R["errors"].append(traceback.format_exc()[-3000:])
        save()
