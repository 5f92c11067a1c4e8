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


# -- issue 19: the error name follows the exception's type, never its wording ------------------
def _helper_modules():
    import importlib
    import pkgutil

    import schedcp_helper

    for info in pkgutil.walk_packages(schedcp_helper.__path__, "schedcp_helper."):
        if ".vm." not in info.name and not info.name.endswith(("__main__", ".examples")):
            yield importlib.import_module(info.name)


def test_every_helper_error_keeps_its_name_whatever_the_message():
    from schedcp_helper.errors import HelperError, subclasses

    list(_helper_modules())  # every subclass defined
    kinds = [HelperError, *subclasses()]
    assert len(kinds) > 12
    for cls in kinds:
        if cls is errors.ServiceError:
            continue
        names = {errors.from_exception(cls(text)).name
                 for text in ("no policy named x", "is not the one running", "takes no runtime "
                              "hints", "no deployment 'ab'", "anything at all")}
        assert names == {cls.dbus_name}, cls
        assert cls.dbus_name in errors.ALL, cls


def test_foreign_exceptions_map_by_type():
    for cls, kind in errors.FOREIGN.items():
        mapped = errors.from_exception(cls("no policy named x"))
        assert mapped.name == kind.dbus_name, cls


CALLER_FACING = ("deploy", "launch", "core", "service.dbus", "service.others",
                 "verifier.token", "verifier.target")
# raises no caller sees: the state file's parsers (Store.load sets a bad file aside) and the
# service's start-up (the process exits)
INTERNAL = {"_spec", "_deployment", "load", "serve"}


@pytest.mark.parametrize("module", CALLER_FACING)
def test_every_raise_site_uses_a_typed_error(module):
    """What these modules raise reaches D-Bus callers: each raise names a HelperError (or a
    type the service maps), so its D-Bus name cannot hang on the message's words."""
    import ast
    import importlib
    import inspect

    from schedcp_helper.errors import HelperError

    mod = importlib.import_module(f"schedcp_helper.{module}")
    tree = ast.parse(inspect.getsource(mod))
    internal = {id(n) for f in ast.walk(tree)
                if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and f.name in INTERNAL
                for n in ast.walk(f)}
    untyped = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None or id(node) in internal:
            continue
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if not isinstance(exc, ast.Name | ast.Attribute):
            continue  # re-raising a caught exception object
        name = exc.id if isinstance(exc, ast.Name) else exc.attr
        cls = getattr(mod, name, None)
        if cls is None and isinstance(exc, ast.Attribute):
            cls = getattr(getattr(mod, ast.unparse(exc.value), None), name, None)
        if not (isinstance(cls, type) and issubclass(cls, (HelperError, *errors.FOREIGN))):
            untyped.append(f"line {node.lineno}: {name}")
    assert untyped == []
