"""Fault campaign for the deployer's state: kill -9 at each step, on a normal, full and
read-only state folder, and check what a restarted helper finds.

A child process runs one step (deploy, keep, revert, recover) in a loop against a real state
folder; the parent kills it with SIGKILL at a random moment and then checks: the state file
loads without being set aside, what is kept is something that was kept, no history entry the
child had already recorded as saved is lost, and a restarted deployer recovers without error.
"Full" is a tiny tmpfs filled to the brim, "read-only" a tmpfs remounted read-only (both need
root). The scheduler itself is not real here (this host may have no sched_ext): the child's
launcher only records what it would run, so the kernel side is covered by the VM tests.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .deploy import Deployer, Store

STEPS = ("deploy", "keep", "revert", "recover")
CONDITIONS = ("normal", "full-disk", "read-only")

CHILD = r"""
import json, os, sys, time
from pathlib import Path
from schedcp_helper import canary as c, deploy as d
from schedcp_helper.scxstate import ScxState

NOW = ["x"]

class Running:
    def __init__(self, spec):
        self.ops = NOW[0] = "ops_" + spec.name
    def alive(self):
        return True
    def stop(self):
        pass

d.read_state = c.read_state = lambda: ScxState(True, "enabled", NOW[0])  # no ejections: kills
d.last_seq = lambda: None
c.kernel_events = lambda seq=None: []
state, step = Path(sys.argv[1]), sys.argv[2]
log = open(sys.argv[3], "a", buffering=1)
print("ready", flush=True)
i = 0
while True:
    i += 1
    try:
        dep = d.Deployer(state, Running)
        if step == "recover":
            dep.recover()
        else:
            spec = d.Spec("bpf", f"s{i}", artifact="ab" * 32)
            x = dep.deploy(spec, d.CanaryParams(window_s=60), 1000)
            if step in ("keep", "revert"):
                dep.keep(x.id)
                log.write(json.dumps({"kept": x.spec.name}) + "\n")
            if step == "revert":
                dep.revert("soak", x.id)
            log.write(json.dumps({"saved": x.id}) + "\n")
        dep._stop_watch.set()
    except (d.DeployError, OSError):
        pass
"""


@dataclass
class Trial:
    step: str
    condition: str
    ok: bool
    problem: str = ""


SEED_SPEC = {"kind": "bpf", "name": "s0", "tunables": {}, "artifact": "cd" * 32, "hints": {}}
SEED = {"version": 1, "kept": SEED_SPEC, "history": [
    {"id": "5eed", "spec": SEED_SPEC, "uid": 1000, "state": "kept"}]}


def _prepare(folder: Path, condition: str) -> None:
    _mount(folder, condition)
    (folder / "state.json").write_text(json.dumps(SEED))
    _finish(folder, condition)


def _mount(folder: Path, condition: str, size: str = "256k") -> None:
    """The folder, on a tiny tmpfs of its own unless ``condition`` is normal."""
    folder.mkdir(parents=True, exist_ok=True)
    if condition != "normal":
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                       check=True)


def _finish(folder: Path, condition: str) -> None:
    """After seeding: fill the folder to the brim, or remount it read-only."""
    if condition == "full-disk":
        with (folder / "filler").open("wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:  # ENOSPC: full
                pass
    elif condition == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def _check(state: Path, log: Path) -> str:
    """'' when the state is sound after the kill, else what is wrong."""
    if any(p.name.startswith("state.corrupt-") for p in state.iterdir()):
        return "a corrupt state file was set aside"
    kept, history = Store(state).load()
    if any(p.name.startswith("state.corrupt-") for p in state.iterdir()):
        return "the state file did not load"
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    saved = {x["saved"] for x in lines if "saved" in x}
    ever_kept = {x["kept"] for x in lines if "kept" in x}
    ids = {h.id for h in history}
    lost = saved - ids
    if lost and len(history) < 200:  # older entries roll off the 200-entry history
        return f"recorded deployments lost: {sorted(lost)[:3]}"
    if kept is not None and kept.name not in {h.spec.name for h in history} | ever_kept:
        return f"kept {kept.name!r} is not in the history"
    try:
        d = Deployer(state, lambda spec: None)
        d.shutdown()
    except Exception as e:  # a restart must not crash
        return f"restart failed: {e!r}"
    return ""


def trial(step: str, condition: str, rng: random.Random) -> Trial:
    with tempfile.TemporaryDirectory(prefix="schedcp-soak-") as d:
        root = Path(d)
        state, log = root / "state", root / "log.jsonl"
        log.touch()
        mounted = condition != "normal"
        try:
            _prepare(state, condition)
            p = subprocess.Popen([sys.executable, "-c", CHILD, str(state), step, str(log)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert p.stdout is not None
            p.stdout.readline()  # "ready"
            time.sleep(rng.uniform(0.0, 0.4))
            p.send_signal(signal.SIGKILL)
            p.wait()
            problem = _check(state, log)
        finally:
            if mounted:
                subprocess.run(["umount", "-l", str(state)], check=False)
        return Trial(step, condition, not problem, problem)


def campaign(trials: int, seed: int = 15) -> list[Trial]:
    rng = random.Random(seed)
    conditions = CONDITIONS if os.geteuid() == 0 else ("normal",)
    return [trial(step, cond, rng) for step in STEPS for cond in conditions
            for _ in range(trials)]


def table(results: list[Trial]) -> str:
    rows = ["| step | condition | trials | sound | problems |", "| --- | --- | --- | --- | --- |"]
    for step in STEPS:
        for cond in CONDITIONS:
            rs = [r for r in results if r.step == step and r.condition == cond]
            if rs:
                bad = sorted({r.problem for r in rs if not r.ok})
                rows.append(f"| {step} | {cond} | {len(rs)} | {sum(r.ok for r in rs)} | "
                            f"{'; '.join(bad)[:120] or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    res = campaign(n)
    print(table(res))
    sys.exit(0 if all(r.ok for r in res) else 1)
