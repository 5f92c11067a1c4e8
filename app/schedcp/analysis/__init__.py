"""Workload Analysis Engine, tiered as in the paper: cheap summaries (``summarize``), details
on request (``details``, condensed by ``profile``), feedback for deployments (``measure``),
and new processes as proc-connector events (``ExecWatcher``).

Names load on first use: ``schedcp.analysis.procfs`` alone must not pull in psutil and the
rest (the tray's services use it, also from a venv without them)."""

from __future__ import annotations

import importlib
from typing import Any

# light, and shadows its own submodule's name: bound now, or importing the submodule would
# leave the module where callers expect the function
from .classify import classify as classify

_WHERE = {
    "ExecWatcher": "events", "ProcEvent": "events",
    "measure": "feedback", "measure_command": "feedback", "snapshot": "summary",
    "summarize": "summary", "normalize_goal": "workload", "profile": "workload",
}
__all__ = sorted([*_WHERE, "classify"])


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
