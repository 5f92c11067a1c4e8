"""The client library against the real stack (tests/dbus_stack.py) and with no helper at all."""

from __future__ import annotations

import time

import pytest
from dbus_next import Variant

from schedcp.client import (
    HelperClient,
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
