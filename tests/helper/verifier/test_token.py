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
