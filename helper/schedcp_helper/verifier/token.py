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
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..errors import TokenInvalid

DEFAULT_TTL = 15 * 60
SECRET_BYTES = 32
log = logging.getLogger(__name__)


class TokenError(TokenInvalid, ValueError):
    """The token is malformed, forged, expired or for something else."""


@dataclass(frozen=True)
class Grant:
    artifact: str  # sha256 of the verified object
    tunables: dict[str, int | bool | str]
    uid: int
    expires: float


def load_secret(path: Path) -> bytes:
    """The helper's secret: exactly ``SECRET_BYTES`` from a root-only regular file.

    A missing, short (power loss at creation left it empty), oversized, linked or exposed key is
    replaced by a fresh one, written and fsync'd before the rename and the folder fsync'd after:
    an empty key would make any hand-made token authentic.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        pass
    except OSError as e:  # a symlink (ELOOP) or unreadable: replace it
        log.warning("token key %s unusable (%s): generating a new one", path, e)
    else:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(SECRET_BYTES + 1)
        if (stat.S_ISREG(st.st_mode) and len(data) == SECRET_BYTES
                and st.st_uid == os.geteuid() and not st.st_mode & 0o077):
            return data
        log.warning("token key %s is unusable (%d bytes, mode %o): generating a new one; "
                    "outstanding tokens become invalid", path, len(data), st.st_mode & 0o7777)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(SECRET_BYTES)
    write_atomic(path, secret, mode=0o600)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: bytes, grant: Grant) -> str:
    if len(secret) < SECRET_BYTES:
        raise TokenError("the helper's token key is unusable")
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
    if len(secret) < SECRET_BYTES:  # never sign or accept with a weak key
        raise TokenError("the helper's token key is unusable; verify again")
    if not hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).digest(), mac):
        raise TokenError("deployment token signature does not match (forged or from another "
                         "helper)")
    try:
        data = json.loads(body)
        grant = Grant(data["a"], data["t"], data["u"], data["e"])
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed deployment token") from None
    if grant.uid != uid:
        raise TokenError("deployment token was issued to another user")
    if (now if now is not None else time.time()) > grant.expires:
        raise TokenError("deployment token expired; verify again")
    return grant


def grant_for(artifact: str, tunables: dict, uid: int, ttl: float = DEFAULT_TTL) -> Grant:
    return Grant(artifact, dict(tunables), uid, time.time() + ttl)
