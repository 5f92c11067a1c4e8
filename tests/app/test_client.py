"""The client library against the real stack (tests/dbus_stack.py) and with no helper at all."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from dbus_next import Variant

from schedcp.client import (
    INTERFACE,
    OBJECT_PATH,
    HelperClient,
    HelperError,
    HelperGone,
    HelperUnavailable,
    NoSchedExt,
    NotFound,
    error_for,
    variants,
)


def test_no_bus_is_helper_unavailable(tmp_path):
    with pytest.raises(HelperUnavailable) as e:
        HelperClient(f"unix:path={tmp_path}/none")
    assert "installed" in str(e.value)


def test_bus_without_helper_is_helper_unavailable(stack):
    stack.stop_helper()
    try:
        with stack.client() as c, pytest.raises(HelperUnavailable):
            c.status()
    finally:
        stack.start_helper()


def test_status_list_history(stack):
    with stack.client() as c:
        st = c.status()
        assert st["supported"] is False and st["target"]
        names = {s["name"]: s for s in c.list_schedulers()}
        assert names["fifo"]["kind"] == "bpf" and names["fifo"]["available"]
        assert "slice_us" in names["vtime"]["tunables"]
        assert isinstance(c.history(5), list)


def test_domain_errors_are_typed(stack):
    with stack.client() as c:
        with pytest.raises(NoSchedExt):
            c.switch("scx_simple", {}, {"window_s": 5})
        with pytest.raises(NotFound):
            c.keep("deadbeef")


def test_verify_progress_is_delivered_to_the_caller(stack):
    seen = []
    with stack.client() as c:
        report = c.verify_source(b"this is not C", "junk", on_progress=lambda s, m: seen.append(s))
    assert report["failed_stage"] == "compile"
    assert seen[:2] == ["input", "input"] and "compile" in seen


def test_signal_subscription_and_unsubscribe(stack):
    got = []
    with stack.client() as c:
        unsub = c.subscribe(got.append)
        c.revert("", "client test")
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        unsub()
    assert got and got[0].member == "StateChanged"


def test_variants_and_error_mapping():
    v = variants({"a": True, "b": 3, "c": 1.5, "d": "x", "e": [1, 2], "f": {1: 2}})
    assert [v[k].signature for k in "abcdef"] == ["b", "x", "d", "s", "au", "a{ut}"]
    assert variants({"g": Variant("u", 1)})["g"].signature == "u"
    assert type(error_for("org.freedesktop.DBus.Error.ServiceUnknown", "x")) is HelperUnavailable
    with pytest.raises(TypeError):
        variants({"h": object()})


# -- the helper leaving the bus ------------------------------------------------------------
def _restart_after(stack, fn):
    try:
        return fn()
    finally:
        if "helper" in stack.procs:
            stack.stop_helper(signal.SIGKILL)
        stack.start_helper()


def test_a_pending_call_fails_at_once_when_the_helper_is_killed(stack):
    """The helper hangs with our call pending (SIGSTOP), then is killed: the call raises the
    typed HelperGone within seconds, not at its timeout."""
    def scenario():
        with stack.client() as c:
            c.status()  # bound to this instance
            os.kill(stack.helper_pid, signal.SIGSTOP)
            result: dict = {}

            def call() -> None:
                t0 = time.monotonic()
                try:
                    c.call("Status", timeout=120)
                    result["returned"] = True
                except HelperError as e:
                    result["error"] = e
                result["after_kill"] = time.monotonic() - result.get("killed", t0)

            th = threading.Thread(target=call)
            th.start()
            time.sleep(1.0)
            assert th.is_alive(), result  # the stopped helper cannot answer
            result["killed"] = time.monotonic()
            stack.stop_helper(signal.SIGKILL)
            th.join(30)
            assert not th.is_alive()
            return result

    result = _restart_after(stack, scenario)
    assert isinstance(result.get("error"), HelperGone), result
    assert result["after_kill"] < 5, result
    assert "left the bus" in str(result["error"]) and "next call" in str(result["error"])
    print(f"\npending call failed {result['after_kill']:.2f} s after kill -9")


def test_on_gone_fires_for_an_idle_connection_and_the_next_instance_answers(stack):
    """What `schedcp deploy` holding a canary relies on: no call is pending, the helper is
    killed, the watcher hears it at once; after a restart the same connection works again."""
    def scenario():
        heard: list = []
        ev = threading.Event()
        with stack.client() as c:
            c.status()
            c.on_gone(lambda e: (heard.append(e), ev.set()))
            t0 = time.monotonic()
            stack.stop_helper(signal.SIGKILL)
            assert ev.wait(10), "on_gone never fired"
            took = time.monotonic() - t0
            stack.start_helper()
            again = c.status()  # the same connection, the new instance
        return heard, took, again

    heard, took, again = _restart_after(stack, scenario)
    assert len(heard) == 1 and isinstance(heard[0], HelperGone), heard
    assert took < 5, took
    assert again["supported"] is False


def test_helper_signals_from_another_peer_are_ignored(stack):
    """A unicast signal that claims the helper's interface but comes from another connection
    never reaches subscribers; the helper's own does."""
    got: list = []
    with stack.client() as c, stack.client() as other:
        c.subscribe(got.append)
        from dbus_next import Message

        spoof = Message.new_signal(OBJECT_PATH, INTERFACE, "DeploymentChanged", "ss",
                                   ["feedface0001", "kept"])
        spoof.destination = c.unique_name
        other._loop.call_soon_threadsafe(other._bus.send, spoof)
        c.revert("", "client test")  # a real StateChanged from the helper
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    members = [s.member for s in got]  # the helper may send more than one StateChanged
    assert "StateChanged" in members and "DeploymentChanged" not in members, got


ACTIVATION_CONF = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <servicedir>{services}</servicedir>
  <limit name="service_start_timeout">1000</limit>
</busconfig>
"""


def test_a_call_outlives_a_bus_activation_timeout(tmp_path):
    """Issue #14: on the loaded system test machine the bus-activated helper took longer than
    dbus-daemon's service_start_timeout to own its name; the first `schedcp status` failed with
    "Failed to activate service ... timed out" although the helper was up seconds later. The
    call was never delivered, so the client sends it again. Here the bus waits 1 s and the
    real helper, activated by the bus, takes 3 s to start the first time (a cold start; the
    bus kills it at its timeout) and starts at once the next time."""
    import sys

    from tests.dbus_stack import start_stack

    state = tmp_path / "state"
    state.mkdir()
    script = tmp_path / "slow-helper"
    cold = tmp_path / "cold"
    script.write_text(f"#!/bin/sh\nif [ ! -e {cold} ]; then touch {cold}; exec sleep 3; fi\n"
                      f"exec {sys.executable} -m schedcp_helper.service "
                      f'--address "$DBUS_STARTER_ADDRESS" --state-dir {state}\n')
    script.chmod(0o755)
    services = tmp_path / "services"
    services.mkdir()
    (services / "org.schedcp.Helper1.service").write_text(
        f"[D-BUS Service]\nName=org.schedcp.Helper1\nExec={script}\n")
    conf = tmp_path / "activation.conf"
    conf.write_text(ACTIVATION_CONF.format(services=services))
    stack = start_stack(helper=False, includes=(conf,))
    try:
        with stack.client() as c:
            t0 = time.monotonic()
            st = c.status()  # before: HelperError "Failed to activate service ... timed out"
            took = time.monotonic() - t0
        assert "state" in st and "ops" in st, st
        assert cold.exists() and took > 1.0, took  # the first start timed out, then the retry
    finally:
        _stop_activated(tmp_path)
        stack.close()


def _stop_activated(folder) -> None:
    """What the bus started (it double-forks: they are not its children) is known by the
    test's folder on its command line: stop it."""
    import psutil

    mine = [p for p in psutil.process_iter(["cmdline"])
            if any(str(folder) in a for a in (p.info["cmdline"] or []))]
    for p in mine:
        p.terminate()
    psutil.wait_procs(mine, timeout=20)
