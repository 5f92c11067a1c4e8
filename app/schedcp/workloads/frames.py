"""Frames while building: a 60 Hz "frame" task doing a fixed amount of work per frame (the
workload probe's periodic mode, no hogs of its own: the load beside it is the build or
stress-ng). A frame misses its 16.7 ms deadline when its work ends after the next frame was
due; the probe counts those skipped periods. Reports achieved fps and the miss ratio, as
gamers' comparisons do (fps during ``make -j``; the 16.6 ms deadline-miss ratio)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .base import BadOutput, Workload

PERIOD_MS = 1000 / 60


@dataclass(frozen=True)
class Frames(Workload):
    probe: str = ""  # the probe binary, built on the host (schedcp_common.workload.probe_binary)
    work: int = 150_000  # spin iterations per frame: ~3.7 ms of a vCPU in virtual time

    def argv(self, cpus: int, seconds: float, workdir: Path) -> list[str]:
        if not self.probe or not Path(self.probe).is_file():
            raise BadOutput(f"frames: no probe binary at {self.probe!r}: pass "
                            "probe=str(schedcp_common.workload.probe_binary())")
        return [self.probe, "latency", "--duration-s", f"{seconds:g}", "--hogs", "0",
                "--period-ms", f"{PERIOD_MS:.4f}", "--burst", str(self.work),
                "--out", str(workdir / "frames.json")]

    def parse(self, stdout: str, workdir: Path) -> dict[str, float]:
        try:
            doc = json.loads((workdir / "frames.json").read_text())
            missed, dur = int(doc["missed"]), float(doc["duration_s"])
            done = int(doc["wake"]["count"]) + 1  # the first frame has no wake-up before it
            p99 = float(doc["wake"]["p99_ms"])  # null when no frame woke at all
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BadOutput(f"frames: no usable probe report ({e}): {stdout[-300:]}") from None
        return {"fps": done / dur, "miss_ratio": missed / (done + missed), "frames": done,
                "p99_ms": p99}


WORKLOAD = Frames(
    name="frames", kind="latency",
    measures="60 Hz frames of fixed work: achieved fps and the 16.7 ms deadline-miss ratio",
    parsed_from="the probe's JSON report: wake-ups (frames) and missed periods",
    tools=())
