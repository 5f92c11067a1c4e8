"""A few trials of the fault campaign (``make soak`` runs 20 per step and condition)."""

from __future__ import annotations

import os

import pytest

from schedcp_helper.soak import CONDITIONS, STEPS, campaign, table


@pytest.mark.skipif(os.geteuid() != 0, reason="full and read-only folders are tmpfs mounts")
def test_kill_9_at_each_step_leaves_a_sound_state():
    results = campaign(1)
    print(table(results))
    assert {(r.step, r.condition) for r in results} == {(s, c) for s in STEPS for c in CONDITIONS}
    assert all(r.ok for r in results), table(results)
