"""The fault campaign against the real kernel, inside the sched_ext micro-VM (one boot, one
Python process: Python starts slowly under TCG).

``python guest_faults.py FIFO_OBJ SCX_BINDIR TRIALS SEED`` writes ``faults.json`` into its cwd.
Each trial forks a helper (its own HelperCore, the real launcher, a real scheduler in the
kernel) that repeats one step in a loop — deploy, canary, keep, revert or recover — on a state
folder that is normal, full (a tiny tmpfs filled to the brim) or read-only; the parent SIGKILLs
the victim at a random moment: the helper itself, or (for a packaged scheduler) its loader
process. Then it checks what a user would: the kernel is on its default once the helper is
gone (nothing it started outlives it), the state file loads without being set aside, nothing
recorded as saved is lost, and a restarted helper brings back exactly what was kept (or the
default) and can revert it. A failing check is recorded with what was seen; the next trial goes
on.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from guestproc import kernel, pids_of, wait_state

from schedcp_helper import scxrun, soak
from schedcp_helper.core import TRUSTED_SCX_DIRS_ENV, HelperCore
from schedcp_helper.deploy import CanaryParams, Spec, Store

FIFO_OBJ, SCX_BINDIR = sys.argv[1], sys.argv[2]
TRIALS, SEED = int(sys.argv[3]), int(sys.argv[4])
os.environ[TRUSTED_SCX_DIRS_ENV] = SCX_BINDIR
SCX_EXE = str(Path(SCX_BINDIR, "scx_simple").resolve())
FIFO_SHA = hashlib.sha256(Path(FIFO_OBJ).read_bytes()).hexdigest()
STEPS = ("deploy", "canary", "keep", "revert", "recover")
VICTIMS = (("bpf", "helper"), ("scx", "helper"), ("scx", "loader"))


def fifo_spec() -> Spec:
    return Spec("bpf", "fifo", {}, FIFO_SHA)


def prepare(state: Path, condition: str) -> None:
    """The state folder: the fifo artifact in place, kept (for recover) or not, then made full
    or read-only as soak does it."""
    soak._mount(state, condition, size="2m")  # the object with its BTF is ~0.7 MB
    (state / "artifacts").mkdir(exist_ok=True)
    shutil.copy(FIFO_OBJ, state / "artifacts" / f"{FIFO_SHA}.bpf.o")
    spec = fifo_spec().__dict__ | {"hints": {}}
    seed = {"version": 1, "kept": spec, "history": [
        {"id": "5eed", "spec": spec, "uid": 0, "state": "kept"}]}
    (state / "state.json").write_text(json.dumps(seed))
    soak._finish(state, condition)


def child_loop(state: Path, step: str, kind: str, log_path: Path) -> None:
    """The helper under test: repeat ``step`` until killed, logging what it recorded."""
    log = log_path.open("a", buffering=1)
    core = HelperCore(state_dir=state)
    d = core.deployer
    spec = fifo_spec() if kind == "bpf" else Spec("scx", "scx_simple",
                                                   core.policy("scx_simple").resolved({}))
    if step != "recover":  # the seed's kept fifo is what a revert falls back to
        d.recover()
    print("ready", flush=True)
    while True:
        try:
            if step == "recover":
                d._stop_running()
                kept = d.recover()
                log.write(json.dumps({"recovered": kept.name if kept else None}) + "\n")
                continue
            dep = d.deploy(spec, CanaryParams(window_s=0.4 if step == "canary" else 60,
                                              poll_s=0.05), 0)
            log.write(json.dumps({"saved": dep.id}) + "\n")
            if step == "canary":
                time.sleep(0.6)
            if step in ("keep", "revert"):
                d.keep(dep.id)
                log.write(json.dumps({"kept": spec.name}) + "\n")
            d.revert("campaign", dep.id)
        except Exception as e:  # DeployError on a full/read-only folder: the next round
            log.write(json.dumps({"error": f"{type(e).__name__}: {e}"[:200]}) + "\n")
            time.sleep(0.05)


def restart_check(state: Path) -> dict:
    """A new helper on the same folder (forked: the parent stays single-threaded): what it
    recovers, that the kernel runs it, and that a revert brings the default back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out: dict = {}
        try:
            core = HelperCore(state_dir=state)
            kept = core.deployer.recover()
            out["kept"] = kept.name if kept else None
            out["after_recover"] = kernel()
            core.revert("campaign check")
            out["after_revert"] = kernel()
            core.deployer.shutdown()
        except BaseException:
            out["error"] = traceback.format_exc()[-800:]
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data or "{}")


def tie_loader(control: bool) -> None:
    """In the helper child: loaders ignore SIGPIPE, so only their tie to the helper
    (PR_SET_PDEATHSIG) can end them when it dies — a loader that prints would otherwise also
    die writing to the dead pipe and hide a missing tie. ``control`` cuts the tie: the checks
    must then see the loader outlive the helper."""
    die = scxrun._die_with_parent

    def quiet(parent: int) -> None:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if not control:
            die(parent)

    scxrun._die_with_parent = quiet


def trial(step: str, kind: str, victim: str, condition: str, rng: random.Random,
          control: bool = False) -> dict:
    t: dict = {"step": step, "kind": kind, "victim": victim, "condition": condition}
    root = Path(tempfile.mkdtemp(prefix="faults-", dir="/run"))
    state, log = root / "state", root / "log.jsonl"
    log.touch()
    problems: list[str] = []
    try:
        prepare(state, condition)
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rd)
            os.dup2(wr, 1)
            try:
                tie_loader(control)
                child_loop(state, step, kind, log)
            finally:
                os._exit(3)
        os.close(wr)
        with os.fdopen(rd) as ready:
            if ready.readline().strip() != "ready":
                raise RuntimeError("the helper child did not start")
        time.sleep(rng.uniform(0.0, 2.5))
        if control:  # the kill must land while a loader runs, or there is nothing to outlive
            t0 = time.monotonic()
            while not pids_of(SCX_EXE) and time.monotonic() - t0 < 5:
                time.sleep(0.01)
        if victim == "loader":
            t0 = time.monotonic()
            while not (loaders := pids_of(SCX_EXE)) and time.monotonic() - t0 < 5:
                time.sleep(0.01)
            for p in loaders:
                os.kill(p, signal.SIGKILL)
            t["loader_killed"] = bool(loaders)
            time.sleep(1.5)  # the helper notices and falls back; it must still be alive
            if os.waitpid(pid, os.WNOHANG)[0]:
                problems.append("the helper died with its loader")
        t["killed_at"] = kernel()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        t["default_after_s"] = wait_state("disabled", 10)
        if t["default_after_s"] is None:
            problems.append(f"the kernel kept {kernel()} after the helper died")
        time.sleep(0.1)
        if left := pids_of(SCX_EXE):
            problems.append(f"{len(left)} loader(s) outlived the helper")
            for p in left:
                os.kill(p, signal.SIGKILL)
            wait_state("disabled", 10)
        if problem := soak._check(state, log):
            problems.append(problem)
        kept, _history = Store(state).load()
        again = restart_check(state)
        t["restart"] = again
        if "error" in again:
            problems.append("restart failed: " + again["error"].splitlines()[-1])
        else:
            want = kept.name if kept else None
            if again["kept"] != want:
                problems.append(f"restart recovered {again['kept']!r}, the file keeps {want!r}")
            running = again["after_recover"]["state"] == "enabled"
            if running != (want is not None):
                problems.append(f"after restart the kernel is {again['after_recover']}")
            if again["after_revert"]["state"] != "disabled":
                problems.append(f"revert after restart left {again['after_revert']}")
        if wait_state("disabled", 10) is None:
            problems.append("the restarted helper left a scheduler running")
    except Exception:
        problems.append("campaign error: " + traceback.format_exc()[-600:])
    finally:
        if condition != "normal":
            subprocess.run(["umount", "-l", str(state)], check=False)
        shutil.rmtree(root, ignore_errors=True)
    t["problems"] = problems
    return t


def main() -> None:
    rng = random.Random(SEED)
    results: list[dict] = []
    t0 = time.monotonic()
    for s, step in enumerate(STEPS):
        for v, (kind, victim) in enumerate(VICTIMS):
            if step == "recover" and kind == "scx":
                continue  # recover brings back the kept scheduler: ours (fifo) here
            for i in range(TRIALS):  # conditions rotate over steps, victims and trials
                condition = soak.CONDITIONS[(s + v + i) % len(soak.CONDITIONS)]
                results.append(trial(step, kind, victim, condition, rng))
                r = results[-1]
                print(f"{step:8} {kind}/{victim:6} {condition:9} "
                      f"{'ok' if not r['problems'] else 'PROBLEM ' + r['problems'][0][:80]}",
                      flush=True)
    control = trial("deploy", "scx", "helper", "normal", rng, control=True)
    print(f"control (loader not tied to the helper): {control['problems']}", flush=True)
    Path("faults.json").write_text(json.dumps(
        {"trials": results, "control": control, "seconds": round(time.monotonic() - t0, 1),
         "end": kernel()}, indent=1))


main()
