"""Micro-VM cost: wall time of `schedcp vm -- true` and of Python one-liners in the guest.

This bounds the verifier's dynamic stage (every candidate scheduler pays one boot). Runs the
real CLI as a user would, side by side in one run, and prints medians of N runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "boot + true": ["true"],
    "boot + /usr/bin/python3 -c 'print(1)'": ["/usr/bin/python3 -c 'print(1)'"],
    f"boot + {sys.executable} -c 'import schedcp_common.vm'":
        [f"{sys.executable} -c 'import schedcp_common.vm'"],
}


def wall(cmd: list[str], cwd: str) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "schedcp", "vm", "--", *cmd], cwd=cwd,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{cmd} failed ({r.returncode}): {r.stderr}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=3, help="runs per case (median reported)")
    n = ap.parse_args().n
    from schedcp_common.vm.guest import kvm_usable

    print(f"accelerator: {'kvm' if kvm_usable() else 'tcg'}; median of {n} runs")
    with tempfile.TemporaryDirectory() as cwd:
        times = {name: [] for name in CASES}
        for _ in range(n):  # interleaved, so drift hits every case alike
            for name, cmd in CASES.items():
                times[name].append(wall(cmd, cwd))
    base = statistics.median(times["boot + true"])
    print(f"{'case':62} {'median s':>9} {'min s':>7} {'x true':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:62} {med:9.2f} {min(ts):7.2f} {med / base:7.2f}")


if __name__ == "__main__":
    main()
