"""Signed, expiring access tokens (JWT, HS256) and opaque refresh tokens stored only as hashes."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt

from backend import clock
from backend.errors import Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_public_id: str
    session_public_id: str


def issue_access_token(*, secret: str, user_public_id: str, session_public_id: str, ttl: int) -> str:
    issued = clock.now()
    payload = {
        "sub": user_public_id,
        "sid": session_public_id,
        "typ": "access",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl)).timestamp()),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


# Tokens this process verified, with their expiry: a signature checks out the same every time, so a token
# seen before needs only its expiry compared again (PyJWT takes longer than the rest of a small request).
_verified: dict[tuple[str, str], tuple[AccessClaims, int]] = {}
MAX_VERIFIED = 20_000


def read_access_token(token: str, *, secret: str) -> AccessClaims:
    """Verify signature and expiry; raise Unauthorized with a reason the client can act on."""
    known = _verified.get((token, secret))
    if known is not None and clock.now().timestamp() < known[1]:
        return known[0]
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "sid", "typ"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("登录已过期，请刷新或重新登录", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("登录凭证无效，请重新登录", code="token_invalid") from exc
    if payload.get("typ") != "access":
        raise Unauthorized("登录凭证无效，请重新登录", code="token_invalid")
    claims = AccessClaims(payload["sub"], payload["sid"])
    if len(_verified) >= MAX_VERIFIED:
        _verified.clear()
    _verified[(token, secret)] = (claims, payload["exp"])
    return claims


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
