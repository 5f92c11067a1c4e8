"""Which verified artifacts came from our shipped policies, and under which name.

Deploying one of those asks polkit for ``switch`` (the same as a packaged scheduler); anything
else is new code and asks for ``deploy-new``. Kept across restarts in the state folder.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from schedcp_common.policy import Policy

from .atomic import write_atomic


class ArtifactBook:
    LIMIT = 256

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        try:
            self.entries: dict[str, dict] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def record(self, artifact: str, name: str, shipped: bool) -> None:
        with self._lock:
            old = self.entries.pop(artifact, {})
            self.entries[artifact] = {"name": old.get("name") if old.get("shipped") else name,
                                      "shipped": shipped or bool(old.get("shipped"))}
            while len(self.entries) > self.LIMIT:
                self.entries.pop(next(iter(self.entries)))
            write_atomic(self.path, json.dumps(self.entries))

    def get(self, artifact: str) -> dict | None:
        with self._lock:
            return self.entries.get(artifact)

    def shipped_names(self) -> set[str]:
        with self._lock:
            return {e["name"] for e in self.entries.values() if e.get("shipped")}


def within_metadata(policy: Policy | None, tunables: dict) -> bool:
    """A shipped artifact counts as shipped only with tunables inside its declared bounds."""
    if policy is None:
        return False
    try:
        policy.validate_tunables(tunables)
    except ValueError:
        return False
    return True
