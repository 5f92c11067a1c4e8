"""The core on a machine with neither sched_ext nor the guest kit (a fresh Debian 12 laptop):
it must still start and answer status, and say what is missing when asked to verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp_helper.core import HelperCore
from schedcp_helper.verifier.target import TargetError


def test_starts_and_reports_status_without_sched_ext_or_kit(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SCHEDCP_VM_CACHE", str(tmp_path / "no-kit"))
    monkeypatch.setenv("SCHEDCP_SHARED_VM", str(tmp_path / "no-shared"))
    core = HelperCore(state_dir=tmp_path / "state")
    st = core.status()
    assert st["supported"] is False and st["target"] == ""
    assert "vm-kit" in st["target_problem"]
    with pytest.raises(TargetError, match="vm-kit"):
        core.verify_policy("fifo", {}, uid=0)
    assert core.history() == []
