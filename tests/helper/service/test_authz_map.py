"""Declared authorization (issue 19): each method names its polkit action in the method table,
the dispatcher asks it before the method runs, and every action is one the .policy declares."""

from __future__ import annotations

import ast
import inspect
import xml.etree.ElementTree as ET
from pathlib import Path

from schedcp_helper.service import authz, dbus
from schedcp_helper.service.interface import METHODS

POLICY = Path(__file__).parents[3] / "packaging/polkit/org.schedcp.Helper1.policy"

# method → (action, the further action some calls need, actions asked on the way)
EXPECTED = {
    "Status": (authz.READ_STATUS, "", ()),
    "ListSchedulers": (authz.READ_STATUS, "", ()),
    "History": (authz.READ_STATUS, "", ()),
    "VerifyPolicy": (authz.VERIFY, "", ()),
    "VerifySource": (authz.VERIFY, "", ()),
    "Deploy": (authz.SWITCH, authz.DEPLOY_NEW, (authz.TAKE_OVER,)),
    "Switch": (authz.SWITCH, "", (authz.TAKE_OVER,)),
    "UpdateHints": (authz.SWITCH, "", ()),
    "ExpectForks": (authz.SWITCH, "", ()),
    "Keep": (authz.SWITCH, "", ()),
    "Revert": (authz.REVERT, authz.REVERT_OTHER, ()),
}


def _policy_actions() -> set[str]:
    return {a.get("id") for a in ET.parse(POLICY).getroot().iter("action")}


def test_the_method_to_action_map():
    assert {m.name: (m.action, m.further, m.also) for m in METHODS.values()} == EXPECTED


def test_every_action_used_exists_and_every_declared_one_is_used():
    declared = _policy_actions()
    used = set().union(*(m.actions() for m in METHODS.values()))
    assert all(m.action for m in METHODS.values())
    assert used <= declared, used - declared
    assert declared == used == set(authz.ACTIONS)


def test_only_the_dispatcher_authorizes():
    """Handlers never pick an action themselves: ``_authorize`` is called where the table's
    action is asked (dispatch) and for a take-over declared in ``also``."""
    tree = ast.parse(inspect.getsource(dbus.HelperService))
    callers = {f.name for f in ast.walk(tree)
               if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
               for n in ast.walk(f)
               if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr == "_authorize"}
    assert callers == {"_call", "_make_room"}

