"""Failures of the verifier's own machinery cross D-Bus by name, never as "internal error"."""

from __future__ import annotations

import pytest

from schedcp_common.workload.build import WorkloadError
from schedcp_helper.service import errors
from schedcp_helper.verifier.compile import SandboxError


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


def test_coexistence_refusals_have_their_own_names():
    """Issue 17: a suspended scheduler and a failed take-over are not a generic Failed; the
    client maps both names to its own exception classes (exit codes 7 and 6)."""
    from schedcp.client import OtherScheduler, error_for
    from schedcp.client import Suspended as ClientSuspended
    from schedcp_helper.deploy import DeployError, Suspended
    from schedcp_helper.service.others import TakeOverError

    s = errors.from_exception(Suspended("scx_lavd is suspended: the kernel ejected it"))
    t = errors.from_exception(TakeOverError("could not take the scheduler from scx_loader"))
    assert (s.name, t.name) == (errors.SUSPENDED, errors.OTHER_SCHEDULER)
    assert errors.from_exception(DeployError("could not start x")).name == errors.FAILED
    assert isinstance(error_for(s.name, s.message), ClientSuspended)
    assert isinstance(error_for(t.name, t.message), OtherScheduler)
    assert {errors.SUSPENDED, errors.OTHER_SCHEDULER} <= set(errors.ALL)
