"""`schedcp demo`: the whole loop inside the micro-VM on a batch long-tail workload.

On a machine without sched_ext this is how SchedCP runs for real: a qemu guest boots a sched_ext
kernel (the host's own kernel where it has sched_ext), and inside it the demo starts a private
system bus and the root helper on it, then runs `schedcp optimize` (offline planner, no API key)
as an ordinary client on a batch of 40 CPU-bound jobs of which one is long, and prints each
scheduler's effect on the makespan from interleaved A/B runs against the kernel default, with
its interval and number of runs. It then reverts to the kernel default and optimizes the same
kind of workload again: the second run starts from what the first stored in the policy store,
re-measures it and stops as soon as the recorded best holds (it says whether it did, with the
new interval). The guest sees the host's files read-only; everything it
writes (bus socket, helper state, the policy database) lives in a throwaway folder.

Then the latency part, in a second guest booted in virtual time (1 vCPU, qemu -icount): a
60 Hz frame task beside more CPU hogs than one CPU serves fairly, the kernel default against
`interactive` (the frame task's cgroup as its target, slice_us=6000) in the same A/B trials;
it prints the frames' deadline-miss ratio and wake-up p99 per scheduler and each effect with
its interval (see schedcp.demo_latency).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .cli.args import command, positive_float, positive_int
from .demoboot import boot


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "demo", "see SchedCP work: the whole loop in a sched_ext micro-VM",
                __doc__, ("schedcp demo", "schedcp demo --part latency",
                          "schedcp demo --save demo.json   (the History window can open it)"))
    p.add_argument("--iterations", type=positive_int, default=3,
                   help="agent iterations of the first run (default 3)")
    p.add_argument("--reuse-iterations", type=positive_int, default=1,
                   help="agent iterations of each later run, which starts from the stored best "
                   "and says whether it held (default 1)")
    p.add_argument("--tasks", type=positive_int, default=40, help="jobs in the batch (default 40)")
    p.add_argument("--runs", type=positive_int, default=2,
                   help="optimizations of the same workload, "
                   "the later ones reusing what the first learned (default 2)")
    p.add_argument("--unit-scale", type=positive_float, default=0.5,
                   help="length of the batch's jobs "
                   "(default 0.5: ~10 s a run in the guest, so A/B trials fit the demo)")
    p.add_argument("--trial-budget", type=positive_float, default=100,
                   help="seconds of A/B trials per "
                   "candidate (default 100; at least 5+5 runs whatever the budget)")
    p.add_argument("--timeout", type=positive_float, default=1500,
                   help="seconds before the guest is "
                   "stopped (default 1500)")
    p.add_argument("--part", choices=("all", "batch", "latency"), default="all",
                   help="run only the batch part or only the latency part (default: both)")
    p.add_argument("--latency-hogs", type=positive_int, default=8, help="CPU hogs beside the frame "
                   "task in the latency part (default 8 on its 1 vCPU)")
    p.add_argument("--latency-seconds", type=positive_float, default=1.0,
                   help="guest-virtual seconds "
                   "of frames per latency run (default 1)")
    p.add_argument("--latency-timeout", type=positive_float, default=600, help="seconds before the "
                   "latency part's guest is stopped (default 600)")
    p.add_argument("--save", type=Path, help="also write every step of every run and the "
                   "helper's deployment history here (JSON; the tray's history view reads it)")
    p.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--probe", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.guest:
        return guest_main(args)
    from schedcp_common.vm.kit import find_kit
    from schedcp_common.workload.build import probe_binary

    try:
        probe = probe_binary()  # built on the host; the guest runs the same file
        kit = find_kit()
    except Exception as e:  # no compiler / no kit: one actionable line
        print(f"schedcp demo: {e}", file=sys.stderr)
        return 2
    env = {"SCHEDCP_LIBBPF": str(kit.libbpf), "SCHEDCP_EMBEDDER": "hash",
           "PYTHONUNBUFFERED": "1"}
    rc = _batch_part(args, probe, env) if args.part in ("all", "batch") else 0
    if args.part in ("all", "latency") and rc in (0, 1):
        from .demo_latency import host_main

        rc = max(rc, host_main(args, probe, env))
    return rc


def _batch_part(args: argparse.Namespace, probe: Path, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="schedcp-demo-") as d:
        os.chmod(d, 0o755)
        line = (f"{sys.executable} -m schedcp demo --guest --probe {probe} "
                f"--iterations {args.iterations} --reuse-iterations {args.reuse_iterations} "
                f"--tasks {args.tasks} --runs {args.runs} "
                f"--unit-scale {args.unit_scale} --trial-budget {args.trial_budget}"
                + (" --save demo.json" if args.save else ""))
        rc = boot(line, Path(d), env, announce=True, timeout=args.timeout)
        if rc is None:
            return 2
        saved = Path(d) / "demo.json"
        if args.save and saved.is_file():
            args.save.write_bytes(saved.read_bytes())
        return rc


class NoHelper(RuntimeError):
    """The private bus or the helper on it did not start (the reason is the message)."""


@contextlib.contextmanager
def private_helper(work: Path) -> Iterator[str]:
    """Inside the guest, as root: a private system bus and the root helper on it, both in
    ``work`` (the guest's own tmpfs: the shared folder is 9p, with no sockets and no reliable
    SQLite locks). Yields the bus address, set as this process's system bus, with the policy
    store and caches in ``work`` too; both are stopped on the way out."""
    from .privatebus import our_conf, start_bus

    try:
        bus, address = start_bus(work, work / "bus.sock", our_conf())
    except RuntimeError as e:
        raise NoHelper(str(e)) from None
    procs = [bus]
    try:
        os.environ.update(DBUS_SYSTEM_BUS_ADDRESS=address, XDG_DATA_HOME=str(work / "data"),
                          XDG_CACHE_HOME=str(work / "cache"))
        helper = subprocess.Popen(
            [sys.executable, "-m", "schedcp_helper.service", "--address", address,
             "--state-dir", str(work / "helper-state")], stdout=subprocess.PIPE,
            stderr=(work / "helper.log").open("w"), text=True)
        procs.insert(0, helper)
        assert helper.stdout is not None
        if helper.stdout.readline().strip() != "ready":
            raise NoHelper("the helper did not start:\n"
                           + (work / "helper.log").read_text()[-2000:])
        yield address
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def guest_main(args: argparse.Namespace) -> int:
    """Inside the guest, as root: bus + helper, then optimize as a client."""
    work = Path(tempfile.mkdtemp(prefix="schedcp-demo-", dir="/run"))
    t0 = time.monotonic()
    try:
        with private_helper(work) as address:
            return _guest_runs(args, address, t0)
    except NoHelper as e:
        print(e)
        return 1


def _guest_runs(args: argparse.Namespace, address: str, t0: float) -> int:
    print(f"guest: system bus and root helper up in {time.monotonic() - t0:.1f} s; "
          f"optimizing a batch of {args.tasks} jobs (one long) for throughput", flush=True)
    # no calibration prologue: a fixed serial second that no scheduler can shorten
    workload = [args.probe, "batch", "--tasks", str(args.tasks), "--calibrate", "none",
                "--unit-scale", str(args.unit_scale)]
    runs: list[list[dict]] = []
    for n in range(1, args.runs + 1):
        if n > 1:
            back_to_default(address)
            print(f"\nrun {n}: the same kind of workload again, from the kernel default; "
                  "the policy store remembers run 1", flush=True)
        # the later runs show the reuse: their first try is the stored best, re-measured
        iterations = args.iterations if n == 1 else args.reuse_iterations
        steps, rc = optimize(workload, iterations, args.trial_budget)
        runs.append(steps)
        if rc != 0:
            break
    print(_table(runs[0], time.monotonic() - t0), flush=True)
    if len(runs) > 1:
        print(_reuse(runs), flush=True)
    if args.save:
        from .client import HelperClient

        with HelperClient(address) as c:
            history = c.history(50)
        Path(args.save).write_text(json.dumps({"runs": runs, "history": history}))
    return rc


def optimize(workload: list[str], iterations: int, budget: float,
             fail_pattern: str = '"status":"failed"') -> tuple[list[dict], int]:
    """One `schedcp optimize --json` run of ``workload`` (a command) as a client of the
    guest's helper, for throughput; prints each step. Its steps (trial progress left out)
    and exit status."""
    argv = [sys.executable, "-m", "schedcp", "optimize", "--goal", "throughput",
            "--max-iterations", str(iterations), "--canary", "2", "--trial-budget",
            str(budget), "--fail-pattern", fail_pattern, "--json", "--", *workload]
    steps = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout is not None
        for raw in p.stdout:
            try:
                step = json.loads(raw)
            except ValueError:
                print(raw, end="", flush=True)
                continue
            if step.get("role") != "trial":  # progress lines are printed, not kept
                steps.append(step)
            if (text := _describe(step)) is not None:
                print(text, flush=True)
    return steps, p.returncode


def back_to_default(address: str) -> None:
    from .client import HelperClient

    with HelperClient(address) as c:
        c.revert("", "demo: the next run starts from the kernel default")


def _reuse(runs: list[list[dict]]) -> str:
    """How later runs used what the first one learned."""
    out = ["", "learning reused (same kind of workload, same policy store)"]
    for n, steps in enumerate(runs, 1):
        plans = [s["plan"] for s in steps if s.get("role") == "planning" and s.get("plan")]
        stop = next((s for s in reversed(steps) if s.get("role") == "stop"), {})
        iters = len([s for s in steps if s.get("role") == "execution"])
        first = plans[0] if plans else {}
        why = (first.get("rationale") or "")[:60]
        out.append(f"  run {n}: {iters} iteration(s); first try {first.get('policy', '-')}"
                   f" ({why}); stop: {stop.get('message', '-')}")
    return "\n".join(out)


def _describe(step: dict) -> str | None:
    from .cli.agent import _line

    return _line(step, "throughput")


def _table(steps: list[dict], seconds: float) -> str:
    """Before/after: each scheduler tried against the kernel default, from its A/B trials
    (medians, the ratio's interval and the number of runs)."""
    from .measure.effect import describe_effect
    from .measure.stats import median

    rows, base_runs = [], []
    for s in steps:
        oc = s.get("outcome") if s.get("role") == "execution" else None
        ev = (oc or {}).get("trials") or {}
        if ev.get("median_b") is not None:
            plan = oc["plan"]
            tun = " ".join(f"{k}={v}" for k, v in sorted(plan["tunables"].items()))
            rows.append((plan["policy"], tun, ev))
            base_runs += ev.get("a") or []
    out = ["", "before/after (makespan of the batch, lower is better; medians of interleaved "
           "A/B runs)", f"  {'scheduler':34} {'makespan':>9} {'vs default':>10}  effect"]
    if base_runs:
        out.append(f"  {'kernel default':34} {median(base_runs):8.2f}s {1.0:9.2f}x  "
                   f"(all {len(base_runs)} baseline runs)")
    for name, tun, ev in rows:
        label = f"{name} {tun}".strip()[:34]
        ratio = ev.get("ratio")
        out.append(f"  {label:34} {ev['median_b']:8.2f}s "
                   + (f"{ratio:9.2f}x" if ratio else f"{'':>10}")
                   + f"  {describe_effect(ev)}")
    wins = [r for r in rows if r[2].get("decision") == "improved"]
    runs = sum(r[2]["n_a"] + r[2]["n_b"] for r in rows)
    if wins:
        best = max(wins, key=lambda r: 1 - r[2]["ratio"])
        out.append(f"best: {best[0]}, {describe_effect(best[2])} against the kernel default; "
                   f"{len(rows)} schedulers measured with {runs} runs in {seconds:.0f} s")
    elif rows:
        out.append(f"best: none beat the kernel default measurably; {len(rows)} schedulers "
                   f"measured with {runs} runs in {seconds:.0f} s")
    live = [s for s in steps if s.get("role") == "execution"
            and str((s.get("outcome") or {}).get("message", "")).startswith("new best")]
    if live:
        out.append(f"the best was live after iteration {live[-1]['iteration']}, "
                   f"{live[-1]['elapsed_s']:.0f} s into the optimization (verification and "
                   "trials included)")
    stop = next((s for s in reversed(steps) if s.get("role") == "stop"), None)
    if stop:
        out.append(f"stop: {stop.get('message', '')}")
    return "\n".join(out)
