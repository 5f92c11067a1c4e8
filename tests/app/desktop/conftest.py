"""Fixtures over tests/desktop_stack.py: one X server, session bus and dunst per module."""

from __future__ import annotations

import pytest

from tests.desktop_stack import StackError, notification_daemon, session_bus, xserver


@pytest.fixture(scope="module")
def display():
    try:
        with xserver() as d:
            yield d
    except StackError as e:
        pytest.fail(f"cannot start Xvfb + openbox: {e}", pytrace=False)


@pytest.fixture(scope="module")
def bus():
    with session_bus() as address:
        yield address


@pytest.fixture(scope="module")
def dunst(display, bus):
    with notification_daemon(display, bus) as nd:
        yield nd
