"""Run a benchmark plan in ONE guest boot: per run, attach a scheduler, start the probe held at
its start barrier, fill the scheduler's map from the probe's pids file, release, record.

Guest side: ``python guest_driver.py plan.json`` (stdlib + the loader only: guest Python is
slow). It appends one JSON object per run to ``results.jsonl`` in its cwd (the shared folder),
never aborting the plan for one failed run. Host side: ``run_plan()`` compiles the objects,
boots the guest and reads the results back; its imports are kept inside it.

Hints come from the workload profile, never from process names: for a batch run, each task's
expected work units (pids file) times the unit cost of its job type measured by the last batch
run of this boot; for a latency run, the pid of the periodic task.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"
SCX_STATE = "/sys/kernel/sched_ext/state"
SCX_OPS = "/sys/kernel/sched_ext/root/ops"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _kernel_says() -> str:
    """The kernel's last sched_ext lines (why a scheduler was ejected)."""
    try:
        log = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "(no dmesg)"
    return " | ".join([x for x in log.splitlines() if "sched_ext" in x][-3:])


def _wait_file(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"probe exited ({proc.returncode}) before writing {path.name}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {path.name} after {timeout} s")
        time.sleep(0.01)


def _hints(kind: str, pids: list[list[str]], calib: dict[str, Any] | None) -> dict[int, int]:
    """tgid -> map value, from the pids file (and, for batch, the last run's calibration)."""
    if kind == "latency":
        return {int(pid): 1 for pid, cls in pids if cls == "interactive"}
    if calib is None:
        raise RuntimeError("batch hints need a calibration: run an unhinted batch variant first")
    jobs, unit_s = calib["jobs"], calib["unit_s"]
    return {int(pid): int(int(units) * unit_s[jobs[i % len(jobs)]] * 1e9)
            for i, (pid, units) in enumerate(pids)}


def _one(run: dict[str, Any], calib: dict[str, Any] | None, idx: int) -> dict[str, Any]:
    out: dict[str, Any] = {"variant": run["variant"], "round": run["round"], "ok": False}
    # in the guest's own /tmp: the shared folder (9p) cannot hold a FIFO
    pids_file, barrier = Path(f"/tmp/bench-pids{idx}"), Path(f"/tmp/bench-barrier{idx}")
    os.mkfifo(barrier)
    sched = None
    proc = None
    try:
        if run.get("obj"):
            from schedcp_helper.loader import BpfScheduler

            sched = BpfScheduler().open(run["obj"])
            if run.get("tunables"):
                sched.set_tunables(run["tunables"])
            sched.load()
            out["ops"] = sched.attach()
        argv = [*run["argv"], "--pids-file", str(pids_file), "--start-barrier", str(barrier)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_file(pids_file, proc, 60)
        pids = [line.split() for line in pids_file.read_text().splitlines() if line.strip()]
        if run.get("hint"):
            hints = _hints(run["hint"], pids, calib)
            for key, value in hints.items():
                sched.update_map(run["hint_map"], key, value)  # type: ignore[union-attr]
            out["hints"] = len(hints)
        fd = os.open(barrier, os.O_WRONLY | os.O_NONBLOCK)  # the probe holds it open O_RDWR
        os.write(fd, b"x")
        os.close(fd)
        stdout, stderr = proc.communicate(timeout=run.get("timeout", 300))
        state, ops = _read(SCX_STATE), _read(SCX_OPS)
        line = next((x for x in reversed(stdout.splitlines()) if x.startswith('{"mode"')), "")
        out["doc"] = json.loads(line) if line else None
        if sched is not None and (state != "enabled" or ops != out.get("ops")):
            out["error"] = (f"scheduler ejected during the run (state {state!r}, ops {ops!r}): "
                            + _kernel_says())
        elif proc.returncode != 0 or not out["doc"] or out["doc"].get("status") != "ok":
            out["error"] = f"probe exit {proc.returncode}: {stderr.strip()[-300:]}"
        else:
            out["ok"] = True
    except Exception as e:  # one failed run must not lose the others
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if sched is not None:
            sched.close()
        barrier.unlink(missing_ok=True)
        pids_file.unlink(missing_ok=True)
    return out


def guest_main(plan_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    calib = None
    failed = 0
    with open(RESULTS, "w") as res:
        for idx, run in enumerate(plan["runs"]):
            out = _one(run, calib, idx)
            doc = out.get("doc") or {}
            if out["ok"] and doc.get("mode") == "batch":
                calib = {"unit_s": doc["calibration_unit_s"],
                         "jobs": [t["job"] for t in doc["tasks"]][:len(doc["calibration_unit_s"])]}
            failed += not out["ok"]
            res.write(json.dumps(out) + "\n")
            res.flush()
            print(f"bench: {run['variant']} round {run['round']}: "
                  f"{'ok' if out['ok'] else 'FAILED ' + out.get('error', '')}", flush=True)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# host side


def compile_objects(names: list[str], out_dir: Path) -> dict[str, str]:
    """``bpf/<name>.bpf.c`` -> ``out_dir/<name>.bpf.o`` with the project's clang-19 recipe."""
    from schedcp_common.vm import find_kit

    kit = find_kit()
    bpf = Path(__file__).resolve().parent.parent / "bpf"
    objs = {}
    for name in names:
        obj = out_dir / f"{name}.bpf.o"
        r = subprocess.run(
            ["clang-19", "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86",
             "-I", str(kit.include), "-I", str(kit.include / "bpf"), "-I", str(bpf),
             "-c", str(bpf / f"{name}.bpf.c"), "-o", str(obj)],
            capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"compiling {name}.bpf.c failed:\n{r.stderr}")
        objs[name] = str(obj)
    return objs


def run_plan(runs: list[dict[str, Any]], out_dir: Path, timeout: float,
             quiet: bool = False, cpus: int = 2, virtual_time: bool = False,
             guest_script: Path | None = None) -> tuple[list[dict[str, Any]], int]:
    """Boot once, run the plan, return (results in plan order, guest exit status).

    ``virtual_time``: qemu -icount (see GuestConfig.virtual_time); times are guest-virtual.
    ``guest_script``: another driver, run as ``SCRIPT --guest plan.json`` in the guest."""
    from schedcp_common.vm import find_kit, kit_config
    from schedcp_common.vm import run as vm_run

    kit = find_kit()
    (out_dir / "plan.json").write_text(json.dumps({"runs": runs}))
    line = (f"{sys.executable} {guest_script} --guest plan.json" if guest_script
            else f"{sys.executable} {Path(__file__).resolve()} plan.json")
    cfg = kit_config(kit, out_dir=out_dir, timeout=timeout, cpus=cpus, virtual_time=virtual_time,
                     env={"SCHEDCP_LIBBPF": str(kit.libdir / "libbpf.so.1.5.0")})
    tail: list[bytes] = []

    def echo(chunk: bytes) -> None:
        tail.append(chunk)
        del tail[:-40]
        if not quiet and chunk.startswith(b"bench:"):
            sys.stderr.write(chunk.decode(errors="replace"))

    result = vm_run(line, cfg, echo)
    path = out_dir / RESULTS
    results = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    if result.returncode not in (0, 1) or len(results) != len(runs):
        sys.stderr.write(b"".join(tail).decode(errors="replace"))
        sys.stderr.write(f"guest: {result.outcome.value} ({result.returncode}) "
                         f"{result.message}; {len(results)}/{len(runs)} runs recorded\n")
    return results, result.returncode


if __name__ == "__main__":
    raise SystemExit(guest_main(sys.argv[1]))
