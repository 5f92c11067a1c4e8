"""A deployment's states. Strings on the wire and in state.json (a StrEnum compares equal to
its value), so clients and older state files read them unchanged."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    CANARY = "canary"  # running, watched for the canary window
    PASSED = "passed"  # the window passed; still guarded against ejection, not yet kept
    KEPT = "kept"  # the user's last-known-good: restored after a restart
    REVERTED = "reverted"  # stopped (asked, the breaker, its holder left); the previous is back
    FAILED = "failed"  # did not start, or could not be recorded or restored
    REPLACED = "replaced"  # another deployment, or another tool's scheduler, took its place
