"""Named D-Bus errors, and the one place exceptions become them: by type, never by message.

Callers see a stable error name and a one-line message a person can act on; never a traceback
or a path inside the helper (those go to the helper's own log).
"""

from __future__ import annotations

import re

from schedcp_common.policy import PolicyError
from schedcp_common.vm.guest import GuestError
from schedcp_common.vm.kit import KitError
from schedcp_common.workload.build import WorkloadError

from ..errors import (
    NAMES,
    PREFIX,
    Busy,
    HelperError,
    InvalidArgs,
    NoSchedExt,
    NotAuthorized,
    NotFound,
    OtherScheduler,
    SuspendedError,
    TokenInvalid,
    VerifierUnavailable,
)

NOT_AUTHORIZED = NotAuthorized.dbus_name
INVALID_ARGS = InvalidArgs.dbus_name
NO_SCHED_EXT = NoSchedExt.dbus_name
VERIFICATION_FAILED = VerifierUnavailable.dbus_name
TOKEN_INVALID = TokenInvalid.dbus_name
NOT_FOUND = NotFound.dbus_name
BUSY = Busy.dbus_name
FAILED = HelperError.dbus_name
# another tool's scheduler is attached (scx_loader, scx.service, a process): pass take_over
OTHER_SCHEDULER = OtherScheduler.dbus_name
# the kernel ejected this scheduler before: pass resume to run it again
SUSPENDED = SuspendedError.dbus_name
ALL = NAMES
MAX_MESSAGE = 400
# exceptions of code shared with the app (policies, the micro-VM kit, the probe build), which
# cannot derive from HelperError: their kind, by type
FOREIGN: dict[type[BaseException], type[HelperError]] = {
    PolicyError: InvalidArgs, GuestError: VerifierUnavailable, KitError: VerifierUnavailable,
    WorkloadError: VerifierUnavailable,
}

_PATH = re.compile(r"(?:/[\w.@+-]+){2,}")
assert PREFIX and all(n.startswith(PREFIX) for n in NAMES)


class ServiceError(HelperError):
    """An error to send back as ``name`` with ``message`` (the bus's own names, e.g.
    org.freedesktop.DBus.Error.UnknownMethod, or a mapped HelperError)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = self.dbus_name = name
        self.message = message


def scrub(text: str) -> str:
    """One line, bounded, with file system paths replaced: messages leave the helper."""
    line = " ".join(str(text).split())
    return _PATH.sub("<path>", line)[:MAX_MESSAGE]


def kind_of(e: BaseException) -> type[HelperError] | None:
    """The HelperError class an exception counts as, by its type alone."""
    if isinstance(e, HelperError):
        return type(e)
    for cls, kind in FOREIGN.items():
        if isinstance(e, cls):
            return kind
    return None


def from_exception(e: BaseException) -> ServiceError | None:
    """The D-Bus error for an exception the core raises on bad input or a refused action;
    None for anything unexpected (a bug: logged by the caller, reported as Failed)."""
    if isinstance(e, ServiceError):
        return e
    kind = kind_of(e)
    if kind is None:
        return None
    name = e.dbus_name if isinstance(e, HelperError) else kind.dbus_name
    return ServiceError(name, kind.lead + scrub(str(e)))
