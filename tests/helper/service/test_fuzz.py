"""Property-based fuzzing of every method over the real bus: random signatures and bodies,
right and wrong. >= 10k calls; the helper never crashes, never answers with an internal error,
and no error message leaks a traceback or a path inside the helper.

Bodies that pass every check would start real work (a VerifySource with a valid name compiles
its bytes; a VerifyPolicy of a real policy boots a VM): those are steered to a refused name so
the run stays fast; the per-method tests cover the valid paths.
"""

from __future__ import annotations

import asyncio
import re

from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedcp_helper.service import BUS_NAME, OBJECT_PATH
from schedcp_helper.service.dbus import METHODS

CALLS_PER_EXAMPLE = 100
EXAMPLES = 110  # 11k calls
ALLOWED = re.compile(r"^(org\.schedcp\.Helper1\.Error\.\w+|org\.freedesktop\.DBus\.Error\.\w+)$")
LEAKS = re.compile(r"Traceback|\.py\b|schedcp_helper|/work/|/root/|File \"")  # not a host path

# D-Bus strings are valid UTF-8 without NUL (the bus drops a connection sending others)
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=80)
ints = st.integers(0, 2**32 - 1)
scalar = {
    "s": text, "u": ints, "i": st.integers(-2**31, 2**31 - 1), "b": st.booleans(),
    "d": st.floats(allow_nan=True, allow_infinity=True), "x": st.integers(-2**63, 2**63 - 1),
    "t": st.integers(0, 2**64 - 1), "y": st.integers(0, 255),
    "ay": st.binary(max_size=64), "as": st.lists(text, max_size=4),
    "au": st.lists(ints, max_size=4), "at": st.lists(st.integers(0, 2**64 - 1), max_size=4),
}
variant = st.one_of(*[s.map(lambda v, k=k: Variant(k, v)) for k, s in scalar.items()])
scalar["a{sv}"] = st.dictionaries(st.one_of(text, st.sampled_from(
    ["window_s", "target_pids", "hints", "slice_us", "request_id", "strikes"])), variant,
    max_size=6)
scalar["a{ut}"] = st.dictionaries(ints, st.integers(0, 2**64 - 1), max_size=3)
TYPES = list(scalar)


@st.composite
def a_call(draw):
    member = draw(st.sampled_from([*METHODS, "Nope", "Introspect"]))
    if member in METHODS and draw(st.booleans()):  # the right signature, random values
        from dbus_next.signature import SignatureTree

        types = [t.signature for t in SignatureTree._get(METHODS[member].in_sig).types]
    else:
        types = draw(st.lists(st.sampled_from(TYPES), max_size=4))
    body = [draw(scalar[t]) for t in types]
    if member == "VerifySource" and types == ["ay", "s", "a{sv}", "a{sv}"]:
        body[1] = "bad name!"  # refused before clang runs
    if member == "VerifyPolicy" and types and types[0] == "s":
        body[0] = "zz" + body[0]  # never a real policy: no VM boot
    return member, "".join(types), body


async def run_batch(bus: MessageBus, calls) -> list[Message]:
    msgs = [Message(destination=BUS_NAME, path=OBJECT_PATH,
                    interface="org.freedesktop.DBus.Introspectable" if m == "Introspect"
                    else "org.schedcp.Helper1", member=m, signature=sig, body=body)
            for m, sig, body in calls]
    return await asyncio.wait_for(asyncio.gather(*(bus.call(m) for m in msgs)), 60)


def test_fuzz_all_methods(stack):
    loop = asyncio.new_event_loop()

    async def connect() -> MessageBus:  # dbus-next binds the loop that is running
        return await MessageBus(bus_address=stack.address).connect()

    bus = loop.run_until_complete(connect())
    seen: dict[str, int] = {}
    count = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(a_call(), min_size=CALLS_PER_EXAMPLE, max_size=CALLS_PER_EXAMPLE))
    def fuzz(calls):
        replies = loop.run_until_complete(run_batch(bus, calls))
        count[0] += len(replies)
        for (member, sig, _), r in zip(calls, replies, strict=True):
            key = r.error_name if r.message_type == MessageType.ERROR else "ok"
            seen[key] = seen.get(key, 0) + 1
            if r.message_type == MessageType.ERROR:
                assert ALLOWED.match(r.error_name), (member, sig, r.error_name)
                message = r.body[0] if r.body else ""
                assert not LEAKS.search(message), (member, sig, message)
                assert "internal error" not in message, (member, sig, message)
        assert stack.procs["helper"].poll() is None, "the helper died"

    try:
        fuzz()
    finally:
        bus.disconnect()
        loop.close()
    print(f"{count[0]} calls: {seen}")
    assert count[0] >= 10_000
    assert stack.procs["helper"].poll() is None
    assert "Traceback" not in stack.log.read_text()
