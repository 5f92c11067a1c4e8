"""Stage (e): tokens bind artifact, tunables, uid and expiry to the helper's secret."""

from __future__ import annotations

import stat
import time

import pytest

from schedcp_helper.verifier.token import Grant, TokenError, check, issue, load_secret


def test_secret_is_private_and_stable(tmp_path):
    path = tmp_path / "state" / "token.key"
    first = load_secret(path)
    assert len(first) == 32 and load_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_token_round_trips_only_for_its_user_and_time(tmp_path):
    secret = load_secret(tmp_path / "k")
    grant = Grant("ab" * 32, {"slice_us": 5000}, 1000, time.time() + 60)
    tok = issue(secret, grant)
    assert check(secret, tok, 1000) == Grant(grant.artifact, grant.tunables, 1000,
                                             int(grant.expires))
    with pytest.raises(TokenError, match="another user"):
        check(secret, tok, 1001)
    with pytest.raises(TokenError, match="expired"):
        check(secret, tok, 1000, now=time.time() + 120)
    with pytest.raises(TokenError, match="signature"):
        check(load_secret(tmp_path / "other"), tok, 1000)


def test_tampered_tokens_are_refused(tmp_path):
    import base64
    import json

    secret = load_secret(tmp_path / "k")
    tok = issue(secret, Grant("ab" * 32, {"slice_us": 5000}, 0, time.time() + 60))
    body, mac = tok.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["t"]["slice_us"] = 999999  # raise a tunable past what was verified
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        check(secret, f"{forged}.{mac}", 0)
    for junk in ("", "a.b.c", "no-dot", "!!.??"):
        with pytest.raises(TokenError):
            check(secret, junk, 0)


@pytest.mark.parametrize("content", [b"", b"short", b"x" * 33])
def test_a_short_or_empty_key_is_regenerated_and_never_signs(tmp_path, content):
    """Power loss at creation can leave token.key empty; an empty HMAC key made a hand-made
    token authentic."""
    path = tmp_path / "token.key"
    path.write_bytes(content)
    path.chmod(0o600)
    forged = _sign(content, {"a": "ab" * 32, "t": {}, "u": 1000, "e": int(time.time()) + 60})
    secret = load_secret(path)
    assert len(secret) == 32 and secret != content and path.read_bytes() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(TokenError):
        check(secret, forged, 1000)
    if len(content) < 32:  # even handed the weak key, check refuses to trust it
        with pytest.raises(TokenError, match="unusable"):
            check(content, forged, 1000)


def test_a_linked_or_exposed_key_is_replaced(tmp_path):
    other = tmp_path / "elsewhere"
    other.write_bytes(b"k" * 32)
    link = tmp_path / "token.key"
    link.symlink_to(other)
    assert load_secret(link) != b"k" * 32 and not link.is_symlink()
    exposed = tmp_path / "exposed.key"
    exposed.write_bytes(b"e" * 32)
    exposed.chmod(0o644)
    assert load_secret(exposed) != b"e" * 32


def _sign(secret: bytes, body: dict) -> str:
    import base64
    import hashlib
    import hmac
    import json
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(secret, raw, hashlib.sha256).digest()
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()  # noqa: E731
    return f"{b64(raw)}.{b64(mac)}"
