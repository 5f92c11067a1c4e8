"""Agent test fixtures: a real policy repository in a temporary file per test (one embedder for
the session: loading the model is the slow part), a fake Messages API server, and the real
private D-Bus stack with the helper (tests/dbus_stack.py) for the tests that verify/deploy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app.agent.fakeapi import FakeMessagesAPI


@pytest.fixture(scope="session")
def embedder():
    from schedcp.repo import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory, embedder) -> Path:
    """Seeding embeds every policy (seconds on a busy host): once, then a copy per test."""
    from schedcp.repo import PolicyRepository

    path = tmp_path_factory.mktemp("repo") / "policies.db"
    PolicyRepository.open(path, embedder=embedder).close()
    return path


@pytest.fixture
def repo_path(tmp_path: Path, seeded_db: Path) -> Path:
    path = tmp_path / "policies.db"
    shutil.copyfile(seeded_db, path)
    return path


@pytest.fixture
def repo(repo_path: Path, embedder):
    from schedcp.repo import PolicyRepository

    r = PolicyRepository.open(repo_path, embedder=embedder)
    yield r
    r.close()


@pytest.fixture
def fake_api():
    api = FakeMessagesAPI()
    api.start()
    yield api
    api.stop()

