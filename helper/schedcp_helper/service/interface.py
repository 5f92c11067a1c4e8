"""The ``org.schedcp.Helper1`` interface as the service dispatches it: each method's signature,
argument names and polkit action, the signals and properties, and the introspection XML made
from them. The prose for each lives in the contract, packaging/dbus/org.schedcp.Helper1.xml;
tests hold the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbus_next.signature import SignatureTree

from . import INTERFACE, OBJECT_PATH, authz

VERSION = "1"


@dataclass(frozen=True)
class Method:
    name: str
    in_sig: str
    out_sig: str
    args: tuple[str, ...]  # argument names for introspection
    outs: tuple[str, ...]
    action: str  # the polkit action asked before the method runs
    further: str = ""  # asked instead when this call reaches further (see ``reach`` in dbus.py)
    also: tuple[str, ...] = ()  # asked on the way in some cases (taking over another's scheduler)

    def actions(self) -> set[str]:
        return {a for a in (self.action, self.further, *self.also) if a}


METHODS = {m.name: m for m in (
    Method("Status", "", "a{sv}", (), ("status",), authz.READ_STATUS),
    Method("ListSchedulers", "", "aa{sv}", (), ("schedulers",), authz.READ_STATUS),
    Method("VerifyPolicy", "sa{sv}a{sv}", "s", ("name", "tunables", "options"), ("report",),
           authz.VERIFY),
    Method("VerifySource", "aysa{sv}a{sv}", "s", ("source", "name", "tunables", "options"),
           ("report",), authz.VERIFY),
    # a token for code verified from one of our policies (within its metadata) is a switch;
    # anything else is new code
    Method("Deploy", "sa{sv}", "s", ("token", "canary"), ("id",), authz.SWITCH,
           authz.DEPLOY_NEW, (authz.TAKE_OVER,)),
    Method("Switch", "sa{sv}a{sv}", "s", ("name", "tunables", "canary"), ("id",), authz.SWITCH,
           also=(authz.TAKE_OVER,)),
    Method("UpdateHints", "sa{ut}", "u", ("id", "hints"), ("count",), authz.SWITCH),
    Method("ExpectForks", "suat", "u", ("id", "parent", "runtimes"), ("count",), authz.SWITCH),
    Method("Keep", "s", "s", ("id",), ("state",), authz.SWITCH),
    # going back is the safe direction, but someone else's kept choice is theirs
    Method("Revert", "ss", "s", ("id", "reason"), ("state",), authz.REVERT, authz.REVERT_OTHER),
    Method("History", "u", "s", ("limit",), ("history",), authz.READ_STATUS),
)}
SIGNALS = {
    "StateChanged": ("a{sv}", ("status",)),
    "Reverted": ("ss", ("id", "reason")),
    "VerifyProgress": ("sss", ("request_id", "stage", "message")),
    "DeploymentChanged": ("ss", ("id", "state")),
    # who holds the CPU scheduler, or which other tuners run, changed: the one-line summary
    "OthersChanged": ("s", ("summary",)),
}
PROPERTIES = {"Version": "s"}


def _xml_args(sig: str, names: tuple[str, ...], direction: str | None) -> str:
    types = [t.signature for t in SignatureTree._get(sig).types] if sig else []
    d = f' direction="{direction}"' if direction else ""
    return "".join(f'<arg name="{n}" type="{t}"{d}/>' for n, t in zip(names, types, strict=True))


def introspection_xml(path: str) -> str:
    """Accurate XML from the method table (so it cannot drift from what is dispatched)."""
    head = ('<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN" '
            '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n<node>')
    if path != OBJECT_PATH:
        rest = OBJECT_PATH[len(path.rstrip("/")) + 1:]
        return f'{head}<node name="{rest.split("/")[0]}"/></node>'
    parts = [head, f'<interface name="{INTERFACE}">']
    for m in METHODS.values():
        parts.append(f'<method name="{m.name}">{_xml_args(m.in_sig, m.args, "in")}'
                     f'{_xml_args(m.out_sig, m.outs, "out")}</method>')
    for name, (sig, names) in SIGNALS.items():
        parts.append(f'<signal name="{name}">{_xml_args(sig, names, None)}</signal>')
    for name, sig in PROPERTIES.items():
        parts.append(f'<property name="{name}" type="{sig}" access="read"/>')
    parts.append("</interface>")
    parts.append('<interface name="org.freedesktop.DBus.Introspectable"><method '
                 'name="Introspect"><arg name="xml" type="s" direction="out"/></method>'
                 "</interface>")
    parts.append('<interface name="org.freedesktop.DBus.Peer"><method name="Ping"/><method '
                 'name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/>'
                 "</method></interface>")
    parts.append('<interface name="org.freedesktop.DBus.Properties">'
                 '<method name="Get"><arg name="interface" type="s" direction="in"/>'
                 '<arg name="name" type="s" direction="in"/>'
                 '<arg name="value" type="v" direction="out"/></method>'
                 '<method name="GetAll"><arg name="interface" type="s" direction="in"/>'
                 '<arg name="props" type="a{sv}" direction="out"/></method>'
                 '<signal name="PropertiesChanged"><arg name="interface" type="s"/>'
                 '<arg name="changed" type="a{sv}"/><arg name="invalidated" type="as"/>'
                 "</signal></interface></node>")
    return "".join(parts)
