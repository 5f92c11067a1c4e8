"""Fixtures for the verifier: the target kernel and a verifier on a private state folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schedcp_helper.verifier.pipeline import Verifier
from schedcp_helper.verifier.target import Target

REPO = Path(__file__).resolve().parents[3]
BPF = REPO / "bpf"
BAD = REPO / "tests" / "fixtures" / "bad_schedulers"


def expected_stage(path: Path) -> str:
    return re.search(r"expect-stage: (\S+)", path.read_text())[1]


@pytest.fixture(scope="session")
def target(vm_kit) -> Target:
    t = Target.detect()
    assert t.kit is not None and not t.direct  # this host has no sched_ext: the kit is the target
    return t


@pytest.fixture
def verifier(target: Target, tmp_path: Path) -> Verifier:
    return Verifier(target, tmp_path / "state", [target.kit.include], [BPF / "schedcp.bpf.h"])
