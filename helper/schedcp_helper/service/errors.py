"""Named D-Bus errors, and the one place core exceptions become them.

Callers see a stable error name and a one-line message a person can act on; never a traceback
or a path inside the helper (those go to the helper's own log).
"""

from __future__ import annotations

import re

PREFIX = "org.schedcp.Helper1.Error."
NOT_AUTHORIZED = PREFIX + "NotAuthorized"
INVALID_ARGS = PREFIX + "InvalidArgs"
NO_SCHED_EXT = PREFIX + "NoSchedExt"
VERIFICATION_FAILED = PREFIX + "VerificationFailed"
TOKEN_INVALID = PREFIX + "TokenInvalid"
NOT_FOUND = PREFIX + "NotFound"
BUSY = PREFIX + "Busy"
FAILED = PREFIX + "Failed"
# another tool's scheduler is attached (scx_loader, scx.service, a process): pass take_over
OTHER_SCHEDULER = PREFIX + "OtherScheduler"
# the kernel ejected this scheduler before: pass resume to run it again
SUSPENDED = PREFIX + "Suspended"
ALL = (NOT_AUTHORIZED, INVALID_ARGS, NO_SCHED_EXT, VERIFICATION_FAILED, TOKEN_INVALID,
       NOT_FOUND, BUSY, FAILED, OTHER_SCHEDULER, SUSPENDED)
MAX_MESSAGE = 400

_PATH = re.compile(r"(?:/[\w.@+-]+){2,}")


class ServiceError(Exception):
    """An error to send back as ``name`` with ``message``."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
        self.message = message


def scrub(text: str) -> str:
    """One line, bounded, with file system paths replaced: messages leave the helper."""
    line = " ".join(str(text).split())
    return _PATH.sub("<path>", line)[:MAX_MESSAGE]


def from_exception(e: BaseException) -> ServiceError | None:
    """The D-Bus error for an exception the core raises on bad input or a refused action;
    None for anything unexpected (a bug: logged by the caller, reported as Failed)."""
    from schedcp_common.policy import PolicyError
    from schedcp_common.vm.guest import GuestError
    from schedcp_common.vm.kit import KitError
    from schedcp_common.workload.build import WorkloadError

    from ..deploy import DeployError, Suspended
    from ..verifier.compile import SandboxError
    from ..verifier.target import TargetError
    from ..verifier.token import TokenError
    from .others import TakeOverError

    if isinstance(e, ServiceError):
        return e
    msg = scrub(str(e))
    if isinstance(e, TokenError):
        return ServiceError(TOKEN_INVALID, msg)
    if isinstance(e, PolicyError):
        return ServiceError(NOT_FOUND if msg.startswith("no policy named") else INVALID_ARGS, msg)
    if isinstance(e, Suspended):
        return ServiceError(SUSPENDED, msg)
    if isinstance(e, TakeOverError):
        return ServiceError(OTHER_SCHEDULER, msg)
    if isinstance(e, DeployError):
        if "is not the one running" in msg or msg.startswith("no deployment"):
            return ServiceError(NOT_FOUND, msg)
        if "takes no runtime hints" in msg:
            return ServiceError(INVALID_ARGS, msg)
        return ServiceError(FAILED, msg)
    if isinstance(e, (TargetError, GuestError, KitError, SandboxError, WorkloadError)):
        return ServiceError(VERIFICATION_FAILED, "the verifier could not run: " + msg)
    return None
