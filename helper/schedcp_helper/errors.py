"""The helper's exceptions by kind: each class carries the D-Bus error name callers see.

The name follows the type, never the message, so rewording a message cannot change what a
client receives. The service maps these (and a few foreign types: the policy loader's, the
micro-VM kit's) in ``service/errors.py``; anything else is a bug and reaches callers as Failed.
The names and what each means are the contract in packaging/dbus/org.schedcp.Helper1.xml.
"""

from __future__ import annotations

PREFIX = "org.schedcp.Helper1.Error."


class HelperError(Exception):
    """A refusal or failure a caller should see; ``dbus_name`` is its D-Bus error name and
    ``lead`` a short preface the service puts before the message."""

    dbus_name = PREFIX + "Failed"
    lead = ""


class InvalidArgs(HelperError):
    """An argument of the wrong type, size or value (a tunable outside its metadata)."""

    dbus_name = PREFIX + "InvalidArgs"


class NotFound(HelperError):
    """No policy or deployment of that name, or not the one running."""

    dbus_name = PREFIX + "NotFound"


class NotAuthorized(HelperError):
    """Polkit said no, or the caller is not the one the deployment belongs to."""

    dbus_name = PREFIX + "NotAuthorized"


class Busy(HelperError):
    """Too many verifications queued, or the caller's rate for this method is spent."""

    dbus_name = PREFIX + "Busy"


class NoSchedExt(HelperError):
    """This kernel has no sched_ext: nothing can be deployed here."""

    dbus_name = PREFIX + "NoSchedExt"


class TokenInvalid(HelperError):
    """The token is malformed, forged, expired or another user's."""

    dbus_name = PREFIX + "TokenInvalid"


class VerifierUnavailable(HelperError):
    """The verifier's own machinery (sandbox, micro-VM, probe build) could not run: not a
    verdict on the code, so it is told apart from a failed stage by its preface."""

    dbus_name = PREFIX + "VerificationFailed"
    lead = "the verifier could not run: "


class OtherScheduler(HelperError):
    """Another tool's scheduler is attached (or could not be taken over)."""

    dbus_name = PREFIX + "OtherScheduler"


class SuspendedError(HelperError):
    """The kernel ejected this scheduler before: it waits for the user's ``resume``."""

    dbus_name = PREFIX + "Suspended"


def subclasses(cls: type[HelperError] = HelperError) -> list[type[HelperError]]:
    """Every HelperError subclass defined so far, depth first."""
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *subclasses(sub)]
    return out


NAMES = tuple(dict.fromkeys(c.dbus_name for c in (
    NotAuthorized, InvalidArgs, NoSchedExt, VerifierUnavailable, TokenInvalid, NotFound, Busy,
    HelperError, OtherScheduler, SuspendedError)))
