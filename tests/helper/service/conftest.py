"""The real stack for the service tests: private system bus, real polkitd, test users, the
helper as root (see tests/dbus_stack.py). One per session; torn down with everything it
installed."""

from __future__ import annotations

import pytest

from tests.dbus_stack import Stack, start_stack


@pytest.fixture(scope="session")
def stack() -> Stack:
    try:
        s = start_stack()
    except RuntimeError as e:
        pytest.fail(f"cannot start the D-Bus test stack: {e}", pytrace=False)
    yield s
    s.close()


@pytest.fixture
def root_client(stack: Stack):
    with stack.client() as c:
        yield c
