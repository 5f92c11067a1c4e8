"""Failures of the verifier's own machinery cross D-Bus by name, never as "internal error"."""

from __future__ import annotations

import pytest

from schedcp_helper.service import errors
from schedcp_helper.verifier.compile import SandboxError
from schedcp_helper.workload.build import WorkloadError


@pytest.mark.parametrize("exc", [
    SandboxError("the compile sandbox could not be set up: no private network namespace"),
    WorkloadError("cannot build the probe in /var/cache/schedcp/workload: Read-only file system"),
])
def test_sandbox_and_probe_failures_are_verifier_errors(exc):
    mapped = errors.from_exception(exc)
    assert mapped is not None and mapped.name == errors.VERIFICATION_FAILED
    assert mapped.message.startswith("the verifier could not run: ")
    assert "/var/cache" not in mapped.message  # paths stay in the helper's log


def test_an_unexpected_error_is_still_unmapped():
    assert errors.from_exception(PermissionError(13, "Permission denied")) is None
