"""What the hardening of issue 15 costs: verify time and trial-guest boot, before vs after.

Arms run interleaved (ABAB..., order alternating per round) so machine load hits both alike.
"before" is another checkout's helper package (``--before DIR``, the folder holding its
``schedcp_helper``, e.g. from ``git archive <commit> helper``); "after" is this one.

- verify: one uncached ``Verifier.verify`` of our ``fifo`` policy on a fresh state folder,
  total seconds and the compile/static/trial split;
Both arms force TCG (the micro-VM's accelerator on hosts without working KVM); runs whose
guest died are left out and counted.

- boot: one guest boot running the trial's interpreter importing the loader, sharing the
  host ``/`` without qemu's seccomp sandbox (before) vs the minimal trial root with
  ``-sandbox on,...`` (after).
Prints medians with min-max and n.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERIFY = r"""
import json, sys, tempfile, time
from pathlib import Path
from schedcp_common.policy import default_policies_dir, load_policies
from schedcp_helper.verifier.pipeline import Verifier, VerifyRequest
from schedcp_helper.verifier.target import Target
from schedcp_common.vm import guest
guest._kvm = False  # TCG in both arms: the KVM probe misfires on a loaded nested host
repo = Path(sys.argv[1])
p = load_policies(repo / "policies")["fifo"]
t = Target.detect(); t.functions()
with tempfile.TemporaryDirectory() as d:
    v = Verifier(t, Path(d), [t.kit.include], [repo / "bpf" / "schedcp.bpf.h"])
    t0 = time.monotonic()
    r = v.verify(VerifyRequest(source=(repo / "bpf" / p.source).read_bytes(), uid=0,
                               name="fifo", policy=p))
    total = time.monotonic() - t0
trial = any(s.name == "dynamic" for s in r.stages)  # the guest ran the workload
print(json.dumps({"total": total, "ok": r.ok, "trial": trial,
                  **{s.name: s.seconds for s in r.stages}}))
"""
BOOT = r"""
import json, sys, tempfile, time
from pathlib import Path
from schedcp_common.vm import guest
from schedcp_helper.verifier.target import Target
guest._kvm = False  # TCG in both arms: the KVM probe misfires on a loaded nested host
t = Target.detect()
after = sys.argv[1] == "after"
kw = {}
py = sys.executable
if after:
    from schedcp_helper.verifier.trial import PKG_ROOT, trial_root
    from schedcp_common.workload.run import Mixed, invocation
    root, py = trial_root(t, Path(invocation(Mixed()).argv[0]))
    kw = {"root": root}
    cmd = f"PYTHONPATH={PKG_ROOT} {py} -S -c 'import schedcp_helper.loader'"
else:
    cmd = f"{py} -c 'import schedcp_helper.loader'"
with tempfile.TemporaryDirectory() as d:
    t0 = time.monotonic()
    r = guest.run(cmd, t.guest_config(out_dir=Path(d), timeout=240, **kw), lambda b: None)
print(json.dumps({"total": time.monotonic() - t0, "ok": r.returncode == 0,
                  "trial": r.returncode == 0}))
"""


def one(code: str, arm: str, before: Path, *args: str) -> dict:
    env = dict(os.environ)
    if arm == "before":
        env["PYTHONPATH"] = str(before)
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env=env, cwd=REPO)
    if r.returncode != 0:
        sys.exit(f"{arm} failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def summary(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.2f} s [{min(xs):.2f}-{max(xs):.2f}] n={len(xs)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--only", choices=["verify", "boot"])
    args = ap.parse_args()
    rows: dict[tuple[str, str], list[dict]] = {}
    for i in range(args.n):
        for arm in (("before", "after") if i % 2 == 0 else ("after", "before")):
            if args.only != "boot":
                rows.setdefault(("verify", arm), []).append(
                    one(VERIFY, arm, args.before, str(REPO)))
            if args.only != "verify":
                rows.setdefault(("boot", arm), []).append(one(BOOT, arm, args.before, arm))
            print(f"round {i + 1}/{args.n} {arm} done", file=sys.stderr, flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for (what, arm), all_rs in sorted(rows.items()):
        rs = [r for r in all_rs if r["trial"]]  # a guest that died measures nothing
        if not rs:
            print(f"{what:6} {arm:6} no run completed ({len(all_rs)} tried)")
            continue
        line = (f"{what:6} {arm:6} total {summary([r['total'] for r in rs])}"
                f" ({len(all_rs) - len(rs)} runs without a trial left out)")
        if what == "verify":
            for stage in ("compile", "static", "kernel-verifier", "dynamic"):
                xs = [r[stage] for r in rs if stage in r]
                if xs:
                    line += f" | {stage} {statistics.median(xs):.2f}"
            line += f" | verified {sum(r['ok'] for r in rs)}/{len(rs)}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
