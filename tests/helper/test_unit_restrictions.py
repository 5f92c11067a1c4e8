"""The helper's operations work under its installed unit's restrictions (issue #14 items 3-4).

tests/helper/unitbox.py reproduces the unit's capability bounding set, no_new_privs, read-only
system, hidden homes, private /tmp and network and the namespace ban, all read from
packaging/systemd/schedcp-helper.service; tests/helper/unit_ops.py runs VerifyPolicy and
VerifySource through HelperCore inside it, up to the micro-VM.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from schedcp_common.vm.kit import cache_dir

from . import unit_ops, unitbox

OPS = str(unitbox.ROOT / "tests" / "helper" / "unit_ops.py")
KIT_AT = "/var/cache/schedcp/vm"  # the unit's SCHEDCP_VM_CACHE; not a host path


@pytest.fixture(scope="module", autouse=True)
def box_usable():
    why = unitbox.usable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the unit-restriction tests: {why}", pytrace=False)
        pytest.skip(why)


def run_ops(vm_kit, unit: unitbox.Unit | None = None) -> dict:
    unit = unit or unitbox.Unit.load()
    assert unit.environment.get("SCHEDCP_VM_CACHE") == KIT_AT
    r = unitbox.run([sys.executable, OPS], unit, binds={cache_dir(): KIT_AT})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def stages(result: dict) -> dict[str, tuple[str, str]]:
    assert "stages" in result, f"{result.get('dbus')}: {result.get('trace')}"
    return {name: (verdict, msg) for name, verdict, msg in result["stages"]}


def test_the_box_applies_the_units_restrictions():
    """The harness itself: each restriction it claims is really in force inside the box."""
    unit = unitbox.Unit.load()
    assert {"bpf", "sys_admin", "setuid"} <= set(unit.capabilities)
    assert "dac_override" not in unit.capabilities  # what made verify fail before
    check = (
        "import ctypes, os, json\n"
        "st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in l)\n"
        "def can(f):\n"
        "    try: f(); return True\n"
        "    except OSError: return False\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(json.dumps({'bnd': int(st['CapBnd'], 16), 'nnp': st['NoNewPrivs'].strip(),\n"
        "  'usr_writable': os.access('/usr', os.W_OK) and can(lambda: open('/usr/.x', 'w')),\n"
        "  'home': can(lambda: os.listdir('/root')),\n"
        "  'state': os.access('/var/lib/schedcp', os.W_OK), 'tmp': os.listdir('/tmp'),\n"
        "  'unshare': libc.unshare(0x40000000), 'errno': ctypes.get_errno(),\n"
        "  'ifaces': sorted(l.split(':')[0].strip() for l in open('/proc/net/dev')"
        ".readlines()[2:]), 'env': os.environ.get('SCHEDCP_STATE_DIR')}))\n"
    )
    r = unitbox.run([sys.executable, "-I", "-c", check], unit)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    names = {"chown": 0, "dac_override": 1, "fowner": 3, "kill": 5, "setgid": 6, "setuid": 7,
             "sys_admin": 21, "sys_resource": 24, "syslog": 34, "perfmon": 38, "bpf": 39}
    status = Path("/proc/self/status").read_text()
    # a container may hold fewer than the unit allows (e.g. no CAP_SYS_RESOURCE)
    host = int(status.split("CapBnd:")[1].split()[0], 16)
    assert got["bnd"] == sum(1 << names[c] for c in unit.capabilities) & host
    assert got["nnp"] == "1"
    assert not got["usr_writable"] and not got["home"]
    assert got["state"] and got["tmp"] == []
    assert (got["unshare"], got["errno"]) == (-1, 1)  # RestrictNamespaces: EPERM
    assert got["ifaces"] == ["lo"]  # PrivateNetwork
    assert got["env"] == "/var/lib/schedcp"


def test_verify_policy_and_source_work_under_the_unit(vm_kit):
    """fifo and a user-written scheduler compile and pass the static checks as root with the
    unit's capabilities; a broken source fails its compile stage (not "internal error"); the
    probe is built where the unit lets the helper write; nothing is left behind."""
    out = run_ops(vm_kit)
    for name in ("fifo", "user"):
        got = stages(out[name])
        assert got["input"][0] == got["compile"][0] == got["static"][0] == "pass", got
        assert unit_ops.STOP in got["kernel-verifier"][1], got  # reached the trial's host side
    broken = stages(out["broken"])
    assert broken["compile"][0] == "fail" and "compile failed:" in broken["compile"][1]
    assert "undeclared_thing" in broken["compile"][1]
    assert len(out["probes"]) == 2 and all(out["probe_runs"])
    assert all(p.startswith("/var/cache/schedcp/") for p in out["probes"]), out["probes"]
    assert out["tmp"] == [] and out["not_root_owned"] == []


def test_without_a_private_network_the_sandbox_must_make_one(vm_kit):
    """Outside PrivateNetwork= the compile sandbox needs its own network namespace; where
    namespaces are banned that is a named verifier error, never a silent network-enabled clang
    or an "internal error"."""
    unit = unitbox.Unit.load()
    unit.settings["PrivateNetwork"] = ["no"]
    out = run_ops(vm_kit, unit)
    fifo = out["fifo"]
    assert fifo.get("dbus") == "org.schedcp.Helper1.Error.VerificationFailed", fifo
    assert "network namespace" in fifo["message"]
    assert out["tmp"] == []
