"""Helper over D-Bus: round-trip latency of Status, of an authorized and a denied call (real
private system bus + real polkitd), and the idle helper's CPU and RSS.

    .venv/bin/python bench/helper_dbus.py [--calls 2000] [--idle 30]

Targets (issue 4): Status p99 <= 20 ms; idle helper <= 0.1 % of a core and <= 60 MB RSS.
The denied/authorized pair runs as the test users (their client runs from /opt/schedcp-test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.dbus_stack import USER_NO, USER_YES, start_stack

USER_BENCH = r'''
import json, sys, time
from schedcp.client import HelperClient, HelperError
n, member = int(sys.argv[1]), sys.argv[2]
sig, body = {"Status": ("", []), "History": ("u", [1])}[member]
out = []
with HelperClient() as c:
    for _ in range(n):
        t = time.perf_counter()
        try:
            c.call(member, sig, body)
            ok = True
        except HelperError:
            ok = False
        out.append((time.perf_counter() - t, ok))
print(json.dumps(out))
'''


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000


def summary(lat: list[float]) -> dict:
    return {"n": len(lat), "p50_ms": round(pct(lat, 50), 3), "p99_ms": round(pct(lat, 99), 3),
            "max_ms": round(max(lat) * 1000, 3)}


def as_user(stack, user: str, member: str, n: int) -> dict:
    import subprocess

    script = stack.dir / "bench_user.py"
    script.write_text(USER_BENCH)
    script.chmod(0o644)
    env = {"DBUS_SYSTEM_BUS_ADDRESS": stack.address, "PYTHONPATH": "/opt/schedcp-test/lib"}
    r = subprocess.run(["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()),
                        str(stack.python), str(script), str(n), member],
                       capture_output=True, text=True, check=True, cwd="/")
    rows = json.loads(r.stdout)
    return {**summary([t for t, _ in rows]), "granted": sum(ok for _, ok in rows)}


def proc_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = next(int(line.split()[1]) * 1024 for line in
               Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS"))
    return cpu, rss


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--idle", type=float, default=30.0)
    args = p.parse_args()
    stack = start_stack()
    try:
        res: dict = {}
        _, rss_start = proc_sample(stack.helper_pid)
        with stack.client() as c:
            for _ in range(50):  # warm the caller cache and polkit
                c.status()
            lat = []
            for _ in range(args.calls):
                t = time.perf_counter()
                c.status()
                lat.append(time.perf_counter() - t)
        res["status_root"] = summary(lat)
        # History is read-status too: granted to schedcp-yes, refused to schedcp-no by the rules
        res["authorized_yes"] = as_user(stack, USER_YES, "History", args.calls)
        res["denied_no"] = as_user(stack, USER_NO, "History", args.calls)
        time.sleep(2)  # let the last replies settle
        cpu0, _ = proc_sample(stack.helper_pid)
        t0 = time.monotonic()
        time.sleep(args.idle)
        cpu1, rss = proc_sample(stack.helper_pid)
        res["idle"] = {"seconds": args.idle, "cpu_percent": round(
            100 * (cpu1 - cpu0) / (time.monotonic() - t0), 4),
            "rss_mb": round(rss / 2**20, 1), "rss_mb_at_start": round(rss_start / 2**20, 1)}
        print(json.dumps(res, indent=1))
    finally:
        stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
