"""The probe binary, built once per session into a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcp_common.workload import probe_binary


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return probe_binary(tmp_path_factory.mktemp("probe-cache"))
