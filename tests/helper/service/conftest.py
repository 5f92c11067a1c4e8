"""The real stack for the service tests: private system bus, real polkitd, test users, the
helper as root (see tests/dbus_stack.py). One per session; torn down with everything it
installed."""

from __future__ import annotations

import pytest

from tests.dbus_stack import Stack


@pytest.fixture
def root_client(stack: Stack):
    with stack.client() as c:
        yield c
