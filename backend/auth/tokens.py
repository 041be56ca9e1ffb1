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


def read_access_token(token: str, *, secret: str) -> AccessClaims:
    """Verify signature and expiry; raise Unauthorized with a reason the client can act on."""
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
    return AccessClaims(payload["sub"], payload["sid"])


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
