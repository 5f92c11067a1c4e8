"""Stages (b) and (d) in one go on the target kernel: load, attach, run the workload, detach.

``python -m schedcp_helper.verifier.trial REQUEST.json RESULT.json`` is what runs inside the
micro-VM (or directly, when we already are the throwaway guest). It imports only the loader and
the sched_ext state reader, because Python under TCG is slow to start. It first runs the probe
under the kernel's default scheduler (the baseline), then loads the candidate — the kernel
verifier's refusal ends the trial with the log verbatim — attaches it, runs the same probe,
notes any ejection, and detaches. The host side parses and judges the result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROBE_TIMEOUT = 60.0
HINT_MAP = "expected_runtime"
STAGE_MARK = "@@schedcp-stage "  # progress lines the guest prints for the host to relay
PKG_ROOT = Path(__file__).resolve().parents[2]  # the folder holding schedcp_helper


def _mark(stage: str, message: str) -> None:
    print(f"{STAGE_MARK}{stage} {message}", flush=True)


@dataclass
class TrialRequest:
    object: str
    tunables: dict = field(default_factory=dict)
    hints: dict[int, int] = field(default_factory=dict)
    probe_argv: list[str] = field(default_factory=list)
    baseline: bool = True


def _run_probe(argv: list[str]) -> dict:
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        out = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr[-4000:]}
    except subprocess.TimeoutExpired:
        out = {"rc": None, "stdout": "", "stderr": f"timed out after {PROBE_TIMEOUT:g} s"}
    out["seconds"] = round(time.monotonic() - t0, 3)
    return out


def guest_main(req_path: str, res_path: str) -> int:
    """The in-guest side. Writes RESULT.json whatever happens."""
    from ..loader import BpfScheduler, LoaderError, VerifierError
    from ..scxstate import kernel_events, last_seq, read_state

    req = TrialRequest(**json.loads(Path(req_path).read_text()))
    res: dict = {"verifier": {}, "dynamic": {}}

    def save() -> None:
        Path(res_path).write_text(json.dumps(res))

    sched = BpfScheduler()
    t0 = time.monotonic()
    try:
        sched.open(req.object)
        values = {k: v for k, v in req.tunables.items() if not isinstance(v, str)}
        if values:  # an object without globals has no .rodata to write
            sched.set_tunables(values)
        sched.load()
    except VerifierError as e:
        res["verifier"] = {"ok": False, "message": e.args[0], "log": e.log[-60000:],
                           "libbpf": e.libbpf_messages[-8000:],
                           "seconds": round(time.monotonic() - t0, 3)}
        save()
        return 0
    except LoaderError as e:
        res["verifier"] = {"ok": False, "message": str(e), "log": "", "libbpf": "",
                           "seconds": round(time.monotonic() - t0, 3)}
        save()
        return 0
    res["verifier"] = {"ok": True, "seconds": round(time.monotonic() - t0, 3)}
    _mark("kernel-verifier", "loaded")
    dyn = res["dynamic"]
    t1 = time.monotonic()
    _mark("dynamic", "started")
    if req.baseline:
        _mark("dynamic", "measuring the kernel default scheduler")
        dyn["baseline"] = _run_probe(req.probe_argv)
    seq = last_seq()
    try:
        dyn["ops"] = sched.attach()
    except LoaderError as e:
        dyn["attach_error"] = str(e)
        dyn["events"] = [asdict(ev) for ev in kernel_events(seq)]
        dyn["seconds"] = round(time.monotonic() - t1, 3)
        save()
        return 0
    for tgid, ns in req.hints.items():
        sched.update_map(HINT_MAP, int(tgid), int(ns))
    dyn["state_attached"] = asdict(read_state())
    _mark("dynamic", f"running the workload under {dyn['ops']}")
    dyn["candidate"] = _run_probe(req.probe_argv)
    dyn["state_after"] = asdict(read_state())
    sched.detach()
    sched.close()
    for _ in range(50):  # disabling is asynchronous
        if not read_state().enabled:
            break
        time.sleep(0.05)
    dyn["state_detached"] = asdict(read_state())
    dyn["events"] = [asdict(ev) for ev in kernel_events(seq)]
    dyn["seconds"] = round(time.monotonic() - t1, 3)
    save()
    return 0


def run_trial(target, req: TrialRequest, progress=None) -> dict:
    """Run the trial on ``target`` (a verifier.target.Target): here if we are the guest, else in
    a micro-VM. Returns the result dict; a guest that died yields {"guest_error": ...}."""
    from schedcp_common.vm import guest
    from schedcp_common.vm.guestfiles import GuestFileError, read_bounded
    from schedcp_common.workload.run import Mixed, invocation

    if not req.probe_argv:
        req.probe_argv = list(invocation(Mixed()).argv)
    tail: list[str] = []
    pending = [b""]

    def relay(data: bytes) -> None:  # guest output: progress marks, the rest kept for errors
        pending[0] += data
        *lines, pending[0] = pending[0].split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace")
            if line.startswith(STAGE_MARK) and progress is not None:
                stage, _, msg = line[len(STAGE_MARK):].partition(" ")
                progress(stage, msg)
            else:
                tail.append(line)
                del tail[:-40]
    env = {"SCHEDCP_LIBBPF": str(target.libbpf)} if target.libbpf else {}
    with tempfile.TemporaryDirectory(prefix="schedcp-trial-") as d:
        os.chmod(d, 0o755)
        reqf, resf = Path(d) / "request.json", Path(d) / "result.json"
        obj = Path(d) / "sched.bpf.o"  # the guest needs nothing of the host's state folder
        shutil.copyfile(req.object, obj)
        obj.chmod(0o644)
        reqf.write_text(json.dumps({**asdict(req), "object": str(obj)}))
        argv = [sys.executable, "-m", "schedcp_helper.verifier.trial", str(reqf), str(resf)]
        t0 = time.monotonic()
        if target.direct:
            rc, message = _run_direct(argv, {**os.environ, **env}, relay)
        else:
            root, python = trial_root(target, Path(req.probe_argv[0]))
            argv = [str(python), "-S", "-m", "schedcp_helper.verifier.trial", str(reqf), str(resf)]
            env["PYTHONPATH"] = str(PKG_ROOT)
            cfg = target.guest_config(out_dir=Path(d), timeout=240, env=env, root=root,
                                      cpus=trial_cpus(os.cpu_count() or 2, guest.kvm_usable()))
            r = guest.run(" ".join(argv), cfg, relay)
            rc, message = r.returncode, r.message
        relay(b"\n")
        failure = None if rc == 0 else (
            f"{message or f'trial exited {rc}'}; output: " + "\n".join(tail)[-2000:])
        wall = round(time.monotonic() - t0, 3)
        try:  # guest output is hostile: no symlinks, no fifos, bounded, well-formed
            res = json.loads(read_bounded(resf))
            if not isinstance(res, dict):
                raise ValueError("not an object")
        except GuestFileError as e:
            return {"guest_error": failure or f"the trial wrote no usable result: {e}",
                    "wall": wall}
        except ValueError as e:
            return {"guest_error": failure or f"the trial's result is malformed: {e}",
                    "wall": wall}
        res["wall"] = wall
        if failure:
            res["guest_error"] = failure
        return res


TCG_CPU_CAP = 4  # each TCG vCPU is a host thread: more than this crawls on small hosts
KVM_CPU_CAP = 16


def trial_cpus(host_cpus: int, kvm: bool) -> int:
    """The trial runs on as many CPUs as the machine it is for (capped): a scheduler that only
    misbehaves with more CPUs than the guest had would otherwise pass."""
    return max(2, min(host_cpus, KVM_CPU_CAP if kvm else TCG_CPU_CAP))


def trial_root(target, probe: Path) -> tuple[Path, Path]:
    """The minimal read-only root a trial guest sees, and the interpreter in it: Python's
    standard library, this package, the kit's libbpf, the probe and their libraries only."""
    from schedcp_common.vm import guest, guestroot

    python, trees = guestroot.python_files()
    trees += [PKG_ROOT / "schedcp_helper", PKG_ROOT / "schedcp_common"]
    files = [python, probe]
    if target.libbpf:
        trees.append(Path(target.libbpf).parent)
    return guestroot.build(files, trees, guest._busybox()), python


def _run_direct(argv: list[str], env: dict, relay) -> tuple[int, str]:
    """Run the trial as a child of ours (we are the throwaway guest), relaying its output."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 240
    assert p.stdout is not None
    for line in p.stdout:
        relay(line)
        if time.monotonic() > deadline:
            break
    try:
        return p.wait(max(0.0, deadline - time.monotonic())), ""
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return 124, "the trial did not finish within 240 s"


def judge(res: dict) -> list:
    """Kernel-verifier and dynamic stage reports from a trial result."""
    from schedcp_common.workload.judge import judge_mixed
    from schedcp_common.workload.results import parse

    from .report import StageReport

    ver = res.get("verifier") or {}
    if not ver:
        return [StageReport("kernel-verifier", "fail", res.get("wall", 0.0),
                            f"the trial did not run: {res.get('guest_error', 'unknown error')}")]
    if not ver["ok"]:
        log = (ver.get("log") or ver.get("libbpf") or "").splitlines()
        return [StageReport("kernel-verifier", "fail", ver["seconds"], ver["message"], log)]
    stages = [StageReport("kernel-verifier", "pass", ver["seconds"], "the kernel accepted it")]
    dyn = res.get("dynamic") or {}
    secs = dyn.get("seconds", res.get("wall", 0.0))

    def fail(msg: str, details: list[str] | None = None) -> list:
        return [*stages, StageReport("dynamic", "fail", secs, msg, details or [])]

    if "attach_error" in dyn:
        return fail(f"sched_ext refused to enable it: {dyn['attach_error']}",
                    [e.get("message", "") for e in dyn.get("events", [])])
    ejected = [e for e in dyn.get("events", []) if e["kind"] == "disabled" and e["reason"] not in (
        "unregistered from user space", "")]
    if ejected:
        e = ejected[0]
        return fail(f"sched_ext ejected it during the workload: {e['reason']}"
                    + (f": {e['message']}" if e.get("message") else ""))
    if res.get("guest_error") and "candidate" not in dyn:
        return fail(f"the guest failed during the workload: {res['guest_error']}")
    if (dyn.get("state_after") or {}).get("state") != "enabled":
        return fail("the scheduler was no longer running at the end of the workload")
    cand = dyn.get("candidate") or {}
    if cand.get("rc") is None or not cand.get("stdout"):
        return fail(f"the workload did not finish under it: {cand.get('stderr', '')[-300:]}")
    try:
        result = parse(cand["stdout"], "mixed")
        base_out = (dyn.get("baseline") or {}).get("stdout")
        baseline = parse(base_out, "mixed") if base_out else None
    except Exception as e:  # a malformed probe document is a failed run
        return fail(f"the workload's result could not be read: {e}")
    checks = judge_mixed(result, baseline)
    details = [f"{c.verdict.upper():4} {c.name}: {c.message}" for c in checks]
    bad = [c for c in checks if not c.ok]
    if bad:
        return fail("; ".join(f"{c.name}: {c.message}" for c in bad), details)
    if (dyn.get("state_detached") or {}).get("state") not in ("disabled", ""):
        return fail("it did not detach cleanly", details)
    stages.append(StageReport("dynamic", "pass", secs,
                              f"{len(checks)} workload checks passed under {dyn.get('ops')}",
                              details))
    return stages


if __name__ == "__main__":
    sys.exit(guest_main(sys.argv[1], sys.argv[2]))
