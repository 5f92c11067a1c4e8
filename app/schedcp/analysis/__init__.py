"""Workload Analysis Engine, tiered as in the paper: cheap summaries (``summarize``), details
on request (``details``, condensed by ``profile``), feedback for deployments (``measure``),
and new processes as proc-connector events (``ExecWatcher``)."""

from .classify import classify
from .events import ExecWatcher, ProcEvent
from .feedback import measure, measure_command
from .summary import snapshot, summarize
from .workload import normalize_goal, profile

__all__ = [
    "ExecWatcher",
    "ProcEvent",
    "classify",
    "measure",
    "measure_command",
    "normalize_goal",
    "profile",
    "snapshot",
    "summarize",
]
