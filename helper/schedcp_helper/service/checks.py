"""Argument checks, before anything else: each method's D-Bus body → plain, bounded values.

Everything here is pure and raises InvalidArgs with a message a person can act on; types and
sizes only (the core checks values against the policies' metadata).
"""

from __future__ import annotations

import re

from dbus_next import Variant

from ..errors import InvalidArgs

MAX_SOURCE = 128 * 1024
MAX_STRING = 4096  # tokens are ~300 bytes
MAX_NAME = 64
MAX_REASON = 256
MAX_OPTIONS = 32
MAX_PIDS = 64
MAX_HINTS = 512
MAX_HINT_NS = 7 * 24 * 3600 * 10**9  # a week: longer is no hint
MAX_HISTORY = 200
KEY_RE = re.compile(r"^[a-z0-9_]{1,48}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ID_RE = re.compile(r"^[0-9a-f]{1,32}$")
INT_SIGS = frozenset("ynqiuxt")


def check_string(value: str, what: str, limit: int = MAX_STRING) -> str:
    if len(value) > limit:
        raise InvalidArgs(f"{what} is longer than {limit} characters")
    return value


def check_name(value: str, what: str = "name") -> str:
    if not NAME_RE.match(value):
        raise InvalidArgs(f"{what} must be 1-64 characters of [A-Za-z0-9_.-]")
    return value


def check_tunables(raw: dict) -> dict[str, int | bool | str]:
    """a{sv} → plain values: booleans, integers and short strings only."""
    if len(raw) > MAX_OPTIONS:
        raise InvalidArgs(f"at most {MAX_OPTIONS} tunables")
    out: dict[str, int | bool | str] = {}
    for key, var in raw.items():
        if not KEY_RE.match(key):
            raise InvalidArgs("tunable names are 1-48 characters of [a-z0-9_]")
        sig = var.signature
        if sig == "b":
            out[key] = bool(var.value)
        elif sig in INT_SIGS:
            out[key] = int(var.value)
        elif sig == "s":
            out[key] = check_string(var.value, f"tunable {key}", MAX_NAME)
        else:
            raise InvalidArgs(f"tunable {key}: type {sig!r} is not one of b, integer, s")
    return out


def _number(var: Variant, key: str, lo: float, hi: float) -> float:
    if var.signature not in INT_SIGS | {"d"}:
        raise InvalidArgs(f"{key} must be a number")
    value = float(var.value)
    if not lo <= value <= hi:
        raise InvalidArgs(f"{key} must lie within {lo:g}..{hi:g}")
    return value


FLAGS = ("take_over", "resume")


def check_canary(raw: dict) -> tuple[dict, dict[int, int], set[str]]:
    """Canary options → (CanaryParams keyword arguments, expected-runtime hints, flags).
    Flags: ``take_over`` (another tool's scheduler may be stopped for this deployment and is
    given back after), ``resume`` (run a scheduler the kernel ejected before)."""
    if len(raw) > MAX_OPTIONS:
        raise InvalidArgs(f"at most {MAX_OPTIONS} canary options")
    kw: dict = {}
    hints: dict[int, int] = {}
    flags: set[str] = set()
    for key, var in raw.items():
        if key in FLAGS:
            if var.signature != "b":
                raise InvalidArgs(f"{key} must be a boolean")
            if var.value:
                flags.add(key)
        elif key == "window_s":
            kw[key] = _number(var, key, 1, 3600)
        elif key == "max_wait_ratio":
            kw[key] = _number(var, key, 1.1, 100)
        elif key == "regression_ratio":
            kw[key] = _number(var, key, 1.01, 100)
        elif key == "strikes":
            kw[key] = int(_number(var, key, 1, 100))
        elif key == "target_pids":
            if var.signature != "au" or len(var.value) > MAX_PIDS:
                raise InvalidArgs(f"target_pids must be au with at most {MAX_PIDS} pids")
            kw[key] = [int(p) for p in var.value if p > 0]
        elif key == "hints":
            if var.signature != "a{ut}" or len(var.value) > MAX_PIDS:
                raise InvalidArgs(f"hints must be a{{ut}} (tgid → ns) with at most {MAX_PIDS}")
            hints = {int(k): int(v) for k, v in var.value.items()}
        else:
            raise InvalidArgs(f"unknown canary option {key[:48]!r}; known: window_s, target_pids, "
                           "hints, max_wait_ratio, regression_ratio, strikes, take_over, resume")
    return kw, hints, flags


def check_options(raw: dict) -> dict:
    if len(raw) > MAX_OPTIONS:
        raise InvalidArgs(f"at most {MAX_OPTIONS} options")
    out = {}
    for key, var in raw.items():
        if key != "request_id":
            raise InvalidArgs(f"unknown option {key[:48]!r}; known: request_id")
        if var.signature != "s":
            raise InvalidArgs("request_id must be a string")
        out[key] = check_string(var.value, "request_id", MAX_NAME)
    return out


def check_id(dep_id: str, empty_ok: bool = False) -> str:
    if empty_ok and not dep_id:
        return dep_id
    if not ID_RE.match(dep_id):
        raise InvalidArgs("a deployment id is 1-32 hex digits"
                          + (" (or '' for whatever runs)" if empty_ok else ""))
    return dep_id


# -- each method's arguments, in its order ---------------------------------------------------
def no_args(body: list) -> tuple:
    return ()


def verify_policy(body: list) -> tuple:
    name, raw_tunables, raw_options = body
    check_name(name)
    return name, check_tunables(raw_tunables), check_options(raw_options)


def verify_source(body: list) -> tuple:
    source, name, raw_tunables, raw_options = body
    if len(source) > MAX_SOURCE:
        raise InvalidArgs(f"source is larger than {MAX_SOURCE} bytes")
    check_name(name)
    return bytes(source), name, check_tunables(raw_tunables), check_options(raw_options)


def deploy(body: list) -> tuple:
    text, raw_canary = body
    check_string(text, "token")
    return (text, *check_canary(raw_canary))


def switch(body: list) -> tuple:
    name, raw_tunables, raw_canary = body
    check_name(name)
    tunables = check_tunables(raw_tunables)
    kw, _, flags = check_canary(raw_canary)
    return name, tunables, kw, flags


def update_hints(body: list) -> tuple:
    dep_id, hints = body
    check_id(dep_id)
    if len(hints) > MAX_HINTS:
        raise InvalidArgs(f"at most {MAX_HINTS} hints per call")
    if any(not 0 < int(k) < 2**22 or not 0 <= int(v) <= MAX_HINT_NS for k, v in hints.items()):
        raise InvalidArgs("hints map a tgid (1..4194303) to nanoseconds (0..1 week)")
    return dep_id, {int(k): int(v) for k, v in hints.items()}


def expect_forks(body: list) -> tuple:
    dep_id, parent, runtimes = body
    check_id(dep_id)
    if not 0 < parent < 2**22:
        raise InvalidArgs("parent must be a tgid (1..4194303)")
    if len(runtimes) > MAX_HINTS or any(not 0 <= ns <= MAX_HINT_NS for ns in runtimes):
        raise InvalidArgs(f"at most {MAX_HINTS} runtimes of 0..1 week in nanoseconds")
    return dep_id, int(parent), [int(ns) for ns in runtimes]


def keep(body: list) -> tuple:
    return (check_id(body[0]),)


def revert(body: list) -> tuple:
    dep_id, reason = body
    check_id(dep_id, empty_ok=True)
    return dep_id, check_string(reason, "reason", MAX_REASON)


def history(body: list) -> tuple:
    return (min(int(body[0]) or MAX_HISTORY, MAX_HISTORY),)


ARGS = {"Status": no_args, "ListSchedulers": no_args, "VerifyPolicy": verify_policy,
        "VerifySource": verify_source, "Deploy": deploy, "Switch": switch,
        "UpdateHints": update_hints, "ExpectForks": expect_forks, "Keep": keep,
        "Revert": revert, "History": history}
