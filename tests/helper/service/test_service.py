"""The helper on a real private system bus with real polkitd: authorization per method and per
user, bus policy, argument checking, introspection, restart recovery."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from schedcp.client import HelperClient, InvalidArgs, NoSchedExt, NotAuthorized, NotFound
from schedcp_helper.deploy import Deployment, Spec, Store
from schedcp_helper.service import BUS_NAME, INTERFACE
from schedcp_helper.service.dbus import METHODS, SIGNALS
from tests.dbus_stack import USER_DETAILS, USER_NO, USER_YES

NOT_AUTH = "org.schedcp.Helper1.Error.NotAuthorized"
# One call per method that gets past argument checks and authorization cheaply on a host
# without sched_ext (a failing compile and an unknown tunable stop verification early).
CALLS = {
    "Status": "('Status', '', [])",
    "ListSchedulers": "('ListSchedulers', '', [])",
    "VerifyPolicy": "('VerifyPolicy', 'sa{sv}a{sv}', ['fifo', {'nope': Variant('u', 1)}, {}])",
    "VerifySource": "('VerifySource', 'aysa{sv}a{sv}', [b'int x = ;', 'bad', {}, {}])",
    "Deploy": "('Deploy', 'sa{sv}', ['x.y', {'window_s': Variant('d', 5.0)}])",
    "Switch": "('Switch', 'sa{sv}a{sv}', ['scx_simple', {}, {}])",
    "UpdateHints": "('UpdateHints', 'sa{ut}', ['abc123', {4242: 10**9}])",
    "ExpectForks": "('ExpectForks', 'suat', ['abc123', 4242, [10**9, 0]])",
    "Keep": "('Keep', 's', ['abc123'])",
    "Revert": "('Revert', 'ss', ['', 'test'])",
    "History": "('History', 'u', [10])",
}
# what an authorized caller gets on this host: a result, or the domain error that follows
EXPECTED = {"Deploy": "org.schedcp.Helper1.Error.NoSchedExt",
            "Switch": "org.schedcp.Helper1.Error.NoSchedExt",
            "Keep": "org.schedcp.Helper1.Error.NotFound",
            "UpdateHints": "org.schedcp.Helper1.Error.NotFound",
            "ExpectForks": "org.schedcp.Helper1.Error.NotFound"}


def test_every_method_is_covered():
    assert set(CALLS) == set(METHODS)


@pytest.fixture(scope="module")
def per_user(stack):
    calls = "[" + ", ".join(CALLS[m] for m in CALLS) + "]"
    return {u: dict(zip(CALLS, stack.as_user(u, calls), strict=True))
            for u in (USER_YES, USER_NO, "root")}


@pytest.mark.parametrize("method", list(CALLS))
@pytest.mark.parametrize("user", [USER_YES, "root"])
def test_authorized_user_can(per_user, user, method):
    r = per_user[user][method]
    if method in EXPECTED:
        assert not r["ok"] and r["error"] == EXPECTED[method], r
    else:
        assert r["ok"], r


@pytest.mark.parametrize("method", list(CALLS))
def test_unauthorized_user_cannot(per_user, method):
    r = per_user[USER_NO][method]
    assert not r["ok"] and r["error"] == NOT_AUTH, r
    assert "not authorized" in r["message"]


def test_verify_report_comes_back_as_json(per_user):
    report = json.loads(per_user[USER_YES]["VerifySource"]["body"][0])
    assert report["ok"] is False and report["failed_stage"] == "compile"
    report = json.loads(per_user["root"]["VerifyPolicy"]["body"][0])
    assert report["failed_stage"] == "input" and "nope" in report["stages"][0]["message"]


def test_status_is_public_by_default(stack):
    """The .policy says read-status: yes; only the test rules refuse schedcp-no."""
    r = stack.as_user("nobody", "[('Status', '', []), ('Revert', 'ss', ['', ''])]")
    assert r[0]["ok"] and r[0]["body"][0]["supported"] is False
    assert r[1]["error"] == NOT_AUTH


def test_only_root_may_own_the_name(stack):
    r = subprocess.run(["runuser", "-u", USER_YES, "--", "dbus-send",
                        f"--bus={stack.address}", "--print-reply",
                        "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.RequestName", f"string:{BUS_NAME}", "uint32:4"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "AccessDenied" in r.stderr, r.stderr
    r = subprocess.run(["dbus-send", f"--bus={stack.address}", "--print-reply",
                        "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.GetNameOwner", f"string:{BUS_NAME}"],
                       capture_output=True, text=True)
    assert r.returncode == 0


def test_bus_policy_refuses_other_interfaces(stack):
    r = stack.as_user(USER_YES, "[('Status', '', [], 'org.example.Other')]")
    assert r[0]["error"] == "org.freedesktop.DBus.Error.AccessDenied"


@pytest.mark.parametrize("member,sig,body,needle", [
    ("Status", "s", ["x"], "takes ()"),
    ("Keep", "u", [1], "takes (s)"),
    ("Keep", "s", ["not-hex!"], "hex"),
    ("Revert", "ss", ["", "r" * 300], "longer than"),
    ("UpdateHints", "sa{ut}", ["abc", {0: 1}], "tgid"),
    ("ExpectForks", "suat", ["abc", 0, [1]], "tgid"),
    ("ExpectForks", "suat", ["abc", 5, [10**18]], "week"),
    ("UpdateHints", "sa{ut}", ["abc", {5: 10**18}], "week"),
    ("UpdateHints", "sa{ut}", ["abc", {i + 1: 1 for i in range(513)}], "at most 512"),
    ("Deploy", "sa{sv}", ["t" * 5000, {}], "longer than"),
    ("Deploy", "sa{sv}", ["t", {"window_s": ("s", "1")}], "number"),
    ("Deploy", "sa{sv}", ["t", {"window_s": ("d", 1e9)}], "within"),
    ("Deploy", "sa{sv}", ["t", {"bogus": ("b", True)}], "unknown canary option"),
    ("Deploy", "sa{sv}", ["t", {"target_pids": ("au", list(range(100)))}], "at most"),
    ("VerifySource", "aysa{sv}a{sv}", [b"x" * (128 * 1024 + 1), "n", {}, {}], "larger than"),
    ("VerifySource", "aysa{sv}a{sv}", [b"x", "../etc", {}, {}], "name must be"),
    ("VerifyPolicy", "sa{sv}a{sv}", ["fifo", {f"k{i}": ("u", 1) for i in range(33)}, {}],
     "at most 32"),
    ("VerifyPolicy", "sa{sv}a{sv}", ["fifo", {"slice_us": ("ad", [1.0])}, {}], "type"),
    ("VerifyPolicy", "sa{sv}a{sv}", ["fifo", {"Bad-Key": ("u", 1)}, {}], "tunable names"),
    ("VerifyPolicy", "sa{sv}a{sv}", ["fifo", {}, {"request_id": ("u", 1)}], "string"),
    ("Switch", "sa{sv}a{sv}", ["nope", {}, {}], None),
])
def test_bad_arguments_are_refused_and_the_helper_stays_up(root_client, member, sig, body,
                                                           needle):
    from dbus_next import Variant

    def conv(v):
        if isinstance(v, dict):
            return {k: Variant(*x) if isinstance(x, tuple) else x for k, x in v.items()}
        return v

    with pytest.raises((InvalidArgs, NotFound)) as e:
        root_client.call(member, sig, [conv(v) for v in body])
    if needle:
        assert needle in e.value.message, e.value.message
    assert "Traceback" not in e.value.message
    assert root_client.status()["target"]


def test_unknown_method_and_object(root_client, stack):
    from schedcp.client import HelperError

    with pytest.raises(HelperError) as e:
        root_client.call("Nope")
    assert e.value.name == "org.freedesktop.DBus.Error.UnknownMethod"
    assert root_client.version() == "1"


def test_introspection_matches_the_dispatch_table(root_client):
    from dbus_next.introspection import Node

    xml = root_client.call("Introspect", interface="org.freedesktop.DBus.Introspectable")[0]
    node = Node.parse(xml)
    iface = next(i for i in node.interfaces if i.name == INTERFACE)
    got = {m.name: ("".join(a.signature for a in m.in_args),
                    "".join(a.signature for a in m.out_args)) for m in iface.methods}
    assert got == {m.name: (m.in_sig, m.out_sig) for m in METHODS.values()}
    assert {s.name: s.signature for s in iface.signals} == {k: v[0] for k, v in SIGNALS.items()}
    assert {"org.freedesktop.DBus.Peer", "org.freedesktop.DBus.Properties"} <= {
        i.name for i in node.interfaces}
    ET.fromstring(xml)  # well-formed


def test_no_sched_ext_is_a_clear_error(root_client):
    with pytest.raises(NoSchedExt) as e:
        root_client.switch("scx_simple")
    assert "sched_ext" in str(e.value)


def test_denied_error_is_actionable(stack):
    r = stack.as_user(USER_NO, "[('Revert', 'ss', ['', ''])]")[0]
    assert NotAuthorized(r["error"], r["message"]).hint


def test_polkit_receives_the_details_of_a_deploy(stack):
    """The details (scheduler name, artifact hash) reach polkitd itself, not just our call:
    a rule that decides on them lets the deploy through to the kernel check, and refuses a
    call that sends none."""
    deploy, revert = stack.as_user(USER_DETAILS, "[('Deploy', 'sa{sv}', ['x.y', {}]), "
                                   "('Revert', 'ss', ['', ''])]")
    assert deploy["error"] == "org.schedcp.Helper1.Error.NoSchedExt", deploy
    assert revert["error"] == "org.schedcp.Helper1.Error.NotAuthorized", revert


def test_signals_reach_subscribers(root_client):
    got = []
    root_client.subscribe(got.append)
    root_client.revert("", "signal test")  # nothing runs: back to the default, StateChanged
    deadline = time.monotonic() + 5
    while not any(s.member == "StateChanged" for s in got) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(s.member == "StateChanged" and "supported" in s.args[0] for s in got)


def test_killed_helper_restarts_and_recovers_state(stack):
    """SIGKILL mid-canary with a kept scheduler on record: after the restart the unkept
    deployment is marked reverted and the host is in a known state (here, without sched_ext,
    the kernel default: restoring the kept one fails and is recorded)."""
    pid = stack.helper_pid
    stack.stop_helper(signal.SIGKILL)
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    store = Store(stack.state_dir)
    _, history = store.load()
    dep = Deployment(id="feedface0001", spec=Spec("scx", "scx_simple"), uid=0, state="canary",
                     started=time.time(), owner=":1.999")
    store.save(Spec("scx", "scx_simple"), [*history, dep])
    with HelperClient(stack.address) as c:
        from schedcp.client import HelperUnavailable

        with pytest.raises(HelperUnavailable):
            c.status()
    t0 = time.monotonic()
    stack.start_helper()
    restart_s = time.monotonic() - t0
    with stack.client() as c:
        hist = {d["id"]: d for d in c.history(200)}
        st = c.status()
    assert hist["feedface0001"]["state"] == "reverted"
    assert "restarted" in hist["feedface0001"]["reason"]
    assert st["deployment"] == "" and st["last_known_good"] == ""
    assert any(d["state"] == "failed" and "last-known-good" in d["reason"]
               for d in hist.values())
    print(f"helper restart to ready: {restart_s:.2f} s")


def test_one_audit_line_per_privileged_call(per_user, stack):
    """Who, what, artifact, outcome: one journal line per privileged call, none for reads."""
    import pwd

    lines = [ln for ln in stack.log.read_text().splitlines() if "AUDIT " in ln]
    for user in (USER_YES, USER_NO):
        uid = pwd.getpwnam(user).pw_uid
        mine = [ln for ln in lines if f"AUDIT uid={uid} " in ln]
        for method in CALLS:
            hits = [ln for ln in mine if f" method={method} " in ln]
            if method in ("Status", "ListSchedulers", "History"):
                assert hits == [], hits
                continue
            assert hits, f"no audit line for {user} {method}"
            if user == USER_NO:
                assert all(ln.endswith("outcome=NotAuthorized") for ln in hits), hits
    yes = pwd.getpwnam(USER_YES).pw_uid
    verify = next(ln for ln in lines if f"AUDIT uid={yes} " in ln and "VerifySource" in ln)
    assert "name=bad" in verify and "verdict=compile" in verify and "outcome=ok" in verify


def test_deploy_new_asks_an_admin_every_time_and_names_what_runs():
    import xml.etree.ElementTree as ElementTree

    from tests.dbus_stack import POLICY_SRC

    actions = {a.get("id"): a for a in ElementTree.parse(POLICY_SRC).getroot().iter("action")}
    new = actions["org.schedcp.helper.deploy-new"]
    assert {d.tag: d.text for d in new.find("defaults")} == {
        "allow_any": "auth_admin", "allow_inactive": "auth_admin", "allow_active": "auth_admin"}
    assert "$(name)" in new.find("message").text and "$(artifact)" in new.find("message").text
    other = actions["org.schedcp.helper.revert-other"]
    assert other.find("defaults").find("allow_active").text == "auth_admin"


def test_verify_source_is_rate_limited_per_user(stack):
    """Verify needs no password for an active user: a burst is allowed, then Busy with when
    to retry; root is not limited; a fresh helper starts with full buckets."""
    from schedcp_helper.service.limits import RATE_LIMITS

    stack.stop_helper()
    stack.start_helper()
    try:
        burst = RATE_LIMITS["VerifySource"][0]
        call = "('VerifySource', 'aysa{sv}a{sv}', [b'int x = ;', 'bad', {}, {}])"
        rs = stack.as_user(USER_YES, "[" + ", ".join([call] * (burst + 2)) + "]")
        assert all(r["ok"] for r in rs[:burst]), rs[:burst]
        assert [r["error"] for r in rs[burst:]] == ["org.schedcp.Helper1.Error.Busy"] * 2
        assert "rate limit" in rs[-1]["message"] and "retry in" in rs[-1]["message"]
        root = stack.as_user("root", "[" + ", ".join([call] * (burst + 1)) + "]")
        assert all(r["ok"] for r in root)
    finally:
        stack.stop_helper()
        stack.start_helper()


def test_token_buckets_refill():
    from schedcp_helper.service.limits import RateLimiter

    now = [0.0]
    rl = RateLimiter({"Deploy": (2, 10.0)}, clock=lambda: now[0])
    assert rl.take(1000, "Deploy") == 0 and rl.take(1000, "Deploy") == 0
    assert rl.take(1000, "Deploy") == pytest.approx(10.0)
    assert rl.take(1001, "Deploy") == 0  # per uid
    assert rl.take(1000, "Keep") == 0 and rl.take(0, "Deploy") == 0
    now[0] = 5.0
    assert rl.take(1000, "Deploy") == pytest.approx(5.0)
    now[0] = 10.0
    assert rl.take(1000, "Deploy") == 0
