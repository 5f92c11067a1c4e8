"""Workloads that measure a scheduler: a C probe (mixed / batch / latency) built and cached
on the host, how to run it (host or guest) and the judgement of a ``mixed`` result."""

from .build import WorkloadError, probe_binary
from .judge import Check, Thresholds, Verdict, judge_mixed, passed
from .results import (
    BatchResult,
    BatchTask,
    LatencyResult,
    MixedResult,
    Phase,
    Summary,
    Task,
    parse,
)
from .run import Batch, Invocation, Latency, Mixed, invocation, run_host

__all__ = [
    "Batch", "BatchResult", "BatchTask", "Check", "Invocation", "Latency", "LatencyResult",
    "Mixed", "MixedResult", "Phase", "Summary", "Task", "Thresholds", "Verdict", "WorkloadError",
    "invocation", "judge_mixed", "parse", "passed", "probe_binary", "run_host",
]
