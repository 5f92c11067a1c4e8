"""Guest side of test_vm.py: run catalogue workloads in the micro-VM, one JSON line each.

    python -m tests.app.workloads.guest_run PROBE   (cwd: the shared output folder)
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from schedcp.workloads import catalogue, run, start


def main(probe: str) -> int:
    ws = catalogue()
    ws["frames"] = dataclasses.replace(ws["frames"], probe=probe)
    cg = Path("/sys/fs/cgroup/schedcp-test")
    cg.mkdir(exist_ok=True)
    with open("results.jsonl", "w") as out:
        def emit(name: str, fn) -> None:
            try:
                doc = {"name": name, "ok": True, "metrics": fn()}
            except Exception as e:  # report, keep going: the host test asserts
                doc = {"name": name, "ok": False, "error": f"{type(e).__name__}: {e}"}
            out.write(json.dumps(doc) + "\n")
            out.flush()

        for name in ("cyclictest", "frames", "hackbench", "perf-pipe", "perf-messaging"):
            def under_load(name=name):
                load = start(ws["stress-cpu"], 2, 3600, Path(f"/tmp/{name}-load"))
                load.wait_children(4)
                target = start(ws[name], 2, 0.5, Path(f"/tmp/{name}"), cgroup=cg)
                res = target.finish(timeout=120)
                res.update({"load_" + k: v for k, v in load.finish(60, stop=True).items()})
                return res
            emit(name, under_load)
        emit("stress-cpu", lambda: run(ws["stress-cpu"], 2, 1, Path("/tmp/stress")))
        for name in ("batch-gzip", "batch-sha256", "batch-sort", "batch-sqlite"):
            w = dataclasses.replace(ws[name], unit_scale=0.05)
            emit(name, lambda w=w: w.run_batch(2, Path(f"/tmp/{w.name}")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
