"""Stage (e): a signed deployment token, so deploy accepts only what verify passed.

HMAC-SHA256 with a secret only the helper holds, over the artifact hash, the exact tunables,
the caller's uid and an expiry. A token is useless to another user, for another object or other
tunables, or after it expires; the secret never leaves the helper's state folder.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TTL = 15 * 60


class TokenError(ValueError):
    """The token is malformed, forged, expired or for something else."""


@dataclass(frozen=True)
class Grant:
    artifact: str  # sha256 of the verified object
    tunables: dict[str, int | bool | str]
    uid: int
    expires: float


def load_secret(path: Path) -> bytes:
    """The helper's secret, created 0600 on first use (atomically)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    os.replace(tmp, path)
    return path.read_bytes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: bytes, grant: Grant) -> str:
    body = json.dumps({"a": grant.artifact, "t": grant.tunables, "u": grant.uid,
                       "e": int(grant.expires)}, sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def check(secret: bytes, token: str, uid: int, now: float | None = None) -> Grant:
    """The grant inside ``token`` if it is authentic, unexpired and issued to ``uid``."""
    try:
        body_s, mac_s = token.split(".")
        body, mac = _unb64(body_s), _unb64(mac_s)
    except ValueError:
        raise TokenError("malformed deployment token") from None
    if not hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).digest(), mac):
        raise TokenError("deployment token signature does not match (forged or from another "
                         "helper)")
    data = json.loads(body)
    grant = Grant(data["a"], data["t"], data["u"], data["e"])
    if grant.uid != uid:
        raise TokenError("deployment token was issued to another user")
    if (now if now is not None else time.time()) > grant.expires:
        raise TokenError("deployment token expired; verify again")
    return grant


def grant_for(artifact: str, tunables: dict, uid: int, ttl: float = DEFAULT_TTL) -> Grant:
    return Grant(artifact, dict(tunables), uid, time.time() + ttl)
