"""`schedcp demo`'s latency part: 60 Hz frames beside CPU hogs, default vs ``interactive``.

The catalogue's ``frames`` task (a fixed amount of work every 16.7 ms, as a game's frame loop)
runs in a cgroup while stress-ng keeps more CPU hogs busy than one CPU can serve fairly: the
frame task needs more than its fair share, as a game does during ``make -j``. ``interactive``
gets that cgroup as its target (by id, never by name) and a slice longer than a frame's work
(``slice_us=6000``: with its default 3 ms, a frame's work outlasts the slice and the preempted
hog runs its 20 ms slice before the frame can finish). Default and ``interactive`` alternate
under the same A/B trials as every decision of the loop (``schedcp.measure``), judged on the
frame task's wake-up p99 and, on the same runs, its deadline-miss ratio.

It runs in a guest of its own, booted in virtual time (qemu ``-icount``, 1 vCPU): guest time
counts instructions, so the emulator's timer jitter and the host's load vanish and the
numbers show the scheduler's decisions (they are guest-virtual milliseconds). The batch part's
guest cannot do this: it needs 2 vCPUs and multi-threaded TCG for its makespans, and a guest's
clock is fixed when qemu starts. The scheduler is loaded straight into the guest's kernel (as
the benchmarks do): the helper's verify-and-deploy path is what the batch part shows, and in
virtual time its compile and trial stages alone would take minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .model import Metrics

HOGS = 8  # stress-ng workers on the one vCPU: a `make -j8`'s CPU demand
SECONDS = 1.0  # guest-virtual seconds of frames per run (60 frames)
SLICE_US = 6000  # interactive's target slice: longer than a frame's ~3.7 ms of work
CGROUP = Path("/sys/fs/cgroup/schedcp-frames")
SCX_STATE = Path("/sys/kernel/sched_ext/state")
# Guest-side waits are generous on purpose: with -icount sleep=off an idle guest's clock jumps to
# its next timer, so while a process waits for the host (its binary paged in over 9p on a
# loaded host) a 60 s timeout can expire in a fraction of a wall second (seen: stress-ng "ran
# over 60 s" in a 42 s boot). The host's wall-clock limit on the guest is the real guard.
WAIT_S = 3600.0


@dataclass
class FrameRun(Metrics):
    """One run: the frame task's numbers (``wake_p99_ms`` drives the trials) and the hogs'."""

    deadline_miss_ratio: float | None = None
    fps: float | None = None
    hog_ops_per_s: float | None = None


# ---------------------------------------------------------------------------------------------
# host side


def compile_interactive(out_dir: Path) -> Path:
    """Our ``interactive`` policy, compiled on the host by the verifier's own sandboxed compile
    (the guest's clock would make clang take minutes), run as the helper's program."""
    path = out_dir / "interactive.bpf.o"
    r = subprocess.run([sys.executable, "-m", "schedcp_helper.arms", "compile", "interactive",
                        str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or f"exit status {r.returncode}")
    return path


def host_main(args: argparse.Namespace, probe: Path, env: dict[str, str]) -> int:
    """Boot the virtual-time guest and stream what it prints (it prints the table itself)."""
    import tempfile

    from .demoboot import boot
    from .workloads.stress_cpu import WORKLOAD as STRESS

    try:
        STRESS.require()  # stress-ng comes from the host's files: say so before booting
    except RuntimeError as e:
        print(f"schedcp demo: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="schedcp-demo-lat-") as d:
        os.chmod(d, 0o755)
        try:
            obj = compile_interactive(Path(d))
        except Exception as e:  # no clang / kit headers: one actionable line
            print(f"schedcp demo: compiling interactive failed: {e}", file=sys.stderr)
            return 2
        line = (f"{sys.executable} -m schedcp.demo_latency --obj {obj} --probe {probe} "
                f"--hogs {args.latency_hogs} --seconds {args.latency_seconds:g} "
                f"--slice-us {SLICE_US}")
        t0 = time.monotonic()
        print("\nlatency part: a second boot, in virtual time (1 vCPU, qemu -icount): the "
              "batch part's 2-vCPU guest cannot switch its clock", flush=True)
        rc = boot(line, Path(d), env, timeout=args.latency_timeout, cpus=1,
                  virtual_time=True)
        if rc is None:
            return 2
        print(f"latency part: {time.monotonic() - t0:.0f} s of wall time, boot included",
              flush=True)
        return rc


# ---------------------------------------------------------------------------------------------
# guest side: stdlib, the helper's `arms` program and the catalogue (guest Python is slow, virtual
# time more so)


class Arms:
    """A = the kernel default, B = interactive: loaded once by the helper's loader (its
    ``arms`` program, a child of ours), attached and detached per arm."""

    def __init__(self, obj: str, tunables: dict[str, int]) -> None:
        self.arm = "A"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "schedcp_helper.arms", "serve", obj, json.dumps(tunables)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._answer("ready")

    def _answer(self, want: str) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != want:
            raise RuntimeError(f"the scheduler's loader said {line or 'nothing'!r}")

    def _ask(self, request: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        self._answer("ok")

    def switch(self, arm: str) -> None:
        self._ask("detach" if arm == "A" else "attach")
        want = "enabled" if arm == "B" else "disabled"
        deadline = time.monotonic() + WAIT_S
        while (state := _read(SCX_STATE)) != want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sched_ext is {state!r}, not {want!r}, for arm {arm}")
            time.sleep(0.01)
        self.arm = arm

    def still_on(self) -> bool:
        return self.arm == "A" or _read(SCX_STATE) == "enabled"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # end of input: it closes the scheduler and exits
        try:
            self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _kill(run) -> None:
    if run.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.communicate()


def measure_once(frames, hogs, n_hogs: int, seconds: float, work: Path) -> FrameRun:
    """Hogs up, then ``seconds`` of frames in the target cgroup; a failure is a failed run."""
    from .workloads import start

    load = target = None
    try:
        load = start(hogs, 1, 3600, work / "hogs")
        load.wait_children(n_hogs, timeout=WAIT_S)
        target = start(frames, 1, seconds, work / "frames", cgroup=CGROUP)
        fm = target.finish(timeout=WAIT_S)
        lm = load.finish(timeout=WAIT_S, stop=True)
    except Exception as e:
        return FrameRun(failed=f"{type(e).__name__}: {e}", seconds=seconds)
    finally:
        for run in (target, load):
            if run is not None:
                _kill(run)
    return FrameRun(wake_p99_ms=fm["p99_ms"], seconds=seconds, source="frames",
                    deadline_miss_ratio=fm["miss_ratio"], fps=fm["fps"],
                    hog_ops_per_s=lm["bogo_ops_per_s"])


def guest_main(argv: list[str] | None = None) -> int:
    from .measure import StopRule, TrialRunner
    from .workloads.frames import WORKLOAD as FRAMES
    from .workloads.stress_cpu import WORKLOAD as STRESS

    ap = argparse.ArgumentParser(prog="python -m schedcp.demo_latency")
    ap.add_argument("--obj", required=True, help="interactive.bpf.o")
    ap.add_argument("--probe", required=True, help="the workload probe (the frame task)")
    ap.add_argument("--hogs", type=int, default=HOGS)
    ap.add_argument("--seconds", type=float, default=SECONDS)
    ap.add_argument("--slice-us", type=int, default=SLICE_US)
    args = ap.parse_args(argv)
    frames = replace(FRAMES, probe=args.probe)
    hogs = replace(STRESS, per_cpu=args.hogs)
    CGROUP.mkdir(exist_ok=True)
    tunables = {"target_cgid": os.stat(CGROUP).st_ino, "slice_us": args.slice_us}
    work = Path("/tmp/schedcp-demo-latency")
    print(f"guest: 60 Hz frames ({frames.work} spin iterations of work each) in a cgroup, "
          f"beside {args.hogs} stress-ng CPU hogs on 1 vCPU, {args.seconds:g} s per run "
          f"(guest-virtual); interactive slice_us={args.slice_us} with that cgroup as its "
          "target, against the kernel default", flush=True)
    arms = Arms(args.obj, tunables)
    runs: list[FrameRun] = []
    try:
        warm = measure_once(frames, hogs, args.hogs, args.seconds, work)
        if warm.failed:
            print(f"the frame workload failed under the kernel default: {warm.failed}")
            return 1
        print(f"[0] warm-up run (kernel default, not counted): wake-up p99 "
              f"{warm.wake_p99_ms:.3f} ms, deadline-miss ratio {warm.deadline_miss_ratio:.2f}",
              flush=True)
        arms.switch("B")

        def measure() -> FrameRun:
            m = measure_once(frames, hogs, args.hogs, args.seconds, work)
            if not m.failed and not arms.still_on():
                m = FrameRun(failed="interactive was ejected during the run",
                             seconds=args.seconds)
            runs.append(m)
            return m

        runner = TrialRunner(StopRule.for_goal("responsiveness"),
                             progress=lambda p: print("    " + p.line("wake_p99_ms"), flush=True))
        ts = runner.run(measure, arms.switch, "wake_p99_ms")
    finally:
        arms.close()
    print(table(ts, runs, args.slice_us), flush=True)
    return 0 if ts.decision not in ("failed", "invalid") else 1


def table(ts, runs: list[FrameRun], slice_us: int) -> str:
    """Default vs interactive: medians per arm, then each metric's effect with its interval."""
    from .measure import describe_effect
    from .measure.stats import median

    def med(arm: str, attr: str) -> float | None:
        vals = [getattr(m, attr) for t, m in zip(ts.trials, runs, strict=True)
                if t.arm == arm and not t.failed and getattr(m, attr) is not None]
        return median(vals) if vals else None

    misses = ts.companion("deadline_miss_ratio", [m.deadline_miss_ratio for m in runs])
    base_ops = med("A", "hog_ops_per_s")
    out = ["", "frames beside CPU hogs (1 vCPU, guest-virtual time; medians of interleaved A/B "
           "runs; miss ratio and wake-up p99: lower is better)",
           f"  {'scheduler':28} {'miss ratio':>10} {'fps':>6} {'wake-up p99':>12} "
           f"{'hogs work':>9}"]
    for arm, label in (("A", "kernel default"), ("B", f"interactive slice_us={slice_us}")):
        n = len(ts.values(arm))
        if not n:
            out.append(f"  {label:28} (no successful run)")
            continue
        ops = med(arm, "hog_ops_per_s")
        rel = f"{ops / base_ops:8.2f}x" if ops and base_ops else f"{'-':>9}"
        out.append(f"  {label:28} {med(arm, 'deadline_miss_ratio'):10.2f} "
                   f"{med(arm, 'fps'):6.1f} {med(arm, 'wake_p99_ms'):9.3f} ms {rel}  ({n} runs)")
    out.append(f"effect of interactive: {describe_effect(misses.evidence())}")
    gain = ""
    if (pa := med("A", "wake_p99_ms")) and (pb := med("B", "wake_p99_ms")) and pb < pa:
        gain = f"; medians {pa / pb:.1f}x apart"
    out.append(f"effect of interactive: {describe_effect(ts.evidence())}{gain}")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(guest_main())
