"""One contract (issue 19): packaging/dbus/org.schedcp.Helper1.xml documents every method,
argument, signal, property and error, and it is what the service introspects as and what the
client calls."""

from __future__ import annotations

import ast
import inspect
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from dbus_next.introspection import Node

from schedcp import client
from schedcp_helper import errors as helper_errors
from schedcp_helper.service import BUS_NAME, INTERFACE, OBJECT_PATH, errors
from schedcp_helper.service.interface import introspection_xml

CONTRACT = Path(__file__).parents[3] / "packaging/dbus/org.schedcp.Helper1.xml"
DEB_INSTALL = Path(__file__).parents[3] / "packaging/debian/schedcp-helper.install"


def _members(xml: str) -> dict[str, tuple]:
    """Each member of our interface → its args as (name, type, direction)."""
    node = ET.fromstring(xml)
    iface = next(i for i in node.iter("interface") if i.get("name") == INTERFACE)
    return {f"{m.tag}:{m.get('name')}": tuple(
        (a.get("name"), a.get("type"), a.get("direction") or "") for a in m.iter("arg"))
        + ((m.get("type"), m.get("access")) if m.tag == "property" else ())
        for m in iface if m.tag in ("method", "signal", "property")}


def _docs() -> dict[str, str]:
    """The comment right before each member of the contract, by member name."""
    text = CONTRACT.read_text()
    docs = {}
    for m in re.finditer(r"<!--(.*?)-->\s*<(method|signal|property) name=\"(\w+)\"", text, re.S):
        docs[m.group(3)] = m.group(1)
    return docs


def test_the_contract_names_the_bus_name_path_and_interface_both_sides_use():
    root = ET.parse(CONTRACT).getroot()
    assert root.get("name") == OBJECT_PATH == client.OBJECT_PATH
    assert [i.get("name") for i in root.iter("interface")] == [INTERFACE]
    assert INTERFACE == BUS_NAME == client.BUS_NAME == client.INTERFACE
    assert client.ERROR_PREFIX == helper_errors.PREFIX == INTERFACE + ".Error."


def test_the_service_introspects_as_the_contract_says():
    assert _members(CONTRACT.read_text()) == _members(introspection_xml(OBJECT_PATH))


def test_the_live_service_introspects_as_the_contract_says(root_client):
    xml = root_client.call("Introspect", interface="org.freedesktop.DBus.Introspectable")[0]
    Node.parse(xml)
    assert _members(xml) == _members(CONTRACT.read_text())


def test_every_member_and_argument_has_prose():
    docs = _docs()
    members = _members(CONTRACT.read_text())
    assert set(docs) == {k.split(":")[1] for k in members}
    for key, args in members.items():
        doc = docs[key.split(":")[1]]
        assert len(doc.split()) >= 5, key
        for arg in args:
            if isinstance(arg, tuple):
                assert f"@{arg[0]}:" in doc, (key, arg[0])


def test_every_error_is_documented_and_the_client_knows_each():
    text = ET.tostring(ET.parse(CONTRACT).getroot(), encoding="unicode")
    header = CONTRACT.read_text().split("<node", 1)[0]
    documented = set(re.findall(r"(org\.schedcp\.Helper1\.Error\.\w+):", header))
    assert documented == set(errors.ALL)
    assert "Error." not in text  # errors live in the prose, not as members
    known = {name for name in documented if client.error_for(name, "m").__class__.__name__
             == name.rsplit(".", 1)[1]}
    assert known == documented - {errors.FAILED}  # Failed stays the generic HelperError


def _client_calls() -> dict[str, str]:
    """member → in-signature of each call HelperClient makes to our interface."""
    tree = ast.parse(inspect.getsource(client.HelperClient))
    out = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("call", "_verify") and node.args
                and isinstance(node.args[0], ast.Constant)):
            sig = node.args[1].value if len(node.args) > 1 and isinstance(
                node.args[1], ast.Constant) else ""
            out[node.args[0].value] = sig
    return out


def test_the_client_calls_each_method_with_the_contracts_signature():
    calls = _client_calls()
    methods = {k.split(":")[1]: "".join(a[1] for a in args if a[2] == "in")
               for k, args in _members(CONTRACT.read_text()).items()
               if k.startswith("method:")}
    assert set(methods) <= set(calls), set(methods) - set(calls)
    for member, sig in methods.items():
        assert calls[member] == sig, member


@pytest.mark.parametrize("line", ["packaging/dbus/org.schedcp.Helper1.xml "
                                  "usr/share/dbus-1/interfaces"])
def test_the_package_installs_the_contract(line):
    assert line in DEB_INSTALL.read_text().splitlines()
