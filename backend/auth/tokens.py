"""Signed, expiring access tokens (JWT, HS256) and opaque refresh tokens stored only as hashes."""

import base64
import hashlib
import hmac
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


# A refresh token names its session, "<session public id>.<random>.<tag>", so a token of a session that is
# not its current one is known for a token the session spent, however many rotations back: someone kept a
# copy. The tag (a MAC under the app's key) proves the server issued it for that session; without it, anyone
# who saw the session's id (it is in every access token, expired ones too) could end the session at will.
# Tokens issued before they named their session are random alone, with no dot.
SEPARATOR = "."


def _tag(session_public_id: str, nonce: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"refresh:{session_public_id}{SEPARATOR}{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def new_refresh_token(*, session_public_id: str, secret: str) -> str:
    nonce = secrets.token_urlsafe(32)
    return SEPARATOR.join((session_public_id, nonce, _tag(session_public_id, nonce, secret)))


def refresh_token_session(token: str) -> str | None:
    """The public id of the session a refresh token names, or None for a token from before they named one."""
    session_public_id, separator, _ = token.partition(SEPARATOR)
    return session_public_id if separator else None


def issued_for_session(token: str, *, secret: str) -> bool:
    """Whether the server issued this refresh token for the session it names (its tag checks out)."""
    parts = token.split(SEPARATOR)
    if len(parts) != 3:
        return False
    session_public_id, nonce, tag = parts
    return hmac.compare_digest(tag.encode(), _tag(session_public_id, nonce, secret).encode())


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
