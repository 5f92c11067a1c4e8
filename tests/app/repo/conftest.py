"""Fixtures for the policy repository tests: fast repositories on the hashing embedder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedcp.repo import PolicyRepository, SeedDirs

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def seed_copy(tmp_path: Path) -> SeedDirs:
    """A private copy of policies/ and bpf/ that a test may edit."""
    root = tmp_path / "seed"
    shutil.copytree(REPO_ROOT / "policies", root / "policies")
    shutil.copytree(REPO_ROOT / "bpf", root / "bpf")
    return SeedDirs(root / "policies", root / "bpf", root / "policies" / "primitives")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[PolicyRepository]:
    r = PolicyRepository.open(tmp_path / "policies.db", embedder="hash")
    yield r
    r.close()
