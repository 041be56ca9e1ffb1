"""Who is calling: the user behind a live session and the roles they hold, as one small immutable value.

Every authenticated request needs it, so it is read with one query and kept in a process-local cache
(backend.localcache) keyed by the session. Revoking the session, deactivating the user or changing their
roles drops it in every process when that change commits, so a revoked token stops working at once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import bindparam, select

from backend import localcache
from backend.auth.models import AuthSession, RoleMembership, User
from backend.db import fetch_all
from backend.errors import Forbidden, Unauthorized


@dataclass(frozen=True, slots=True)
class Membership:
    id: int
    role: str
    scope_type: str
    scope_id: int


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user as authorization sees them: ids and role memberships, nothing personal."""

    id: int
    public_id: str
    session_public_id: str
    memberships: tuple[Membership, ...]

    def scope_ids(self, role: str, scope_type: str) -> frozenset[int]:
        """The scopes (of one type) in which the user holds a role."""
        return frozenset(
            m.scope_id for m in self.memberships if m.role == role and m.scope_type == scope_type
        )

    def has_role(self, role: str) -> bool:
        return any(m.role == role for m in self.memberships)


class Person(Protocol):
    """Anyone a service acts for: a Principal, or a User row (the demo, jobs) — an id and memberships."""

    id: int
    memberships: Sequence


class _Refused(Exception):
    """Why a session cannot act (raised inside the cache's loader, so nothing is kept)."""

    def __init__(self, reason: str):
        self.reason = reason


# A minute at most, for a change made outside Sandan (by hand in psql) that no process announced.
principals = localcache.LocalCache("principals", max_entries=20_000, max_age=60.0)
localcache.watch(User, principals, tag=lambda user: user.id, on_insert=False)
localcache.watch(AuthSession, principals, tag=lambda session: session.user_id, on_insert=False)
localcache.watch(RoleMembership, principals, tag=lambda membership: membership.user_id)

_QUERY = (
    select(
        AuthSession.user_id,
        AuthSession.revoked_at,
        User.public_id,
        User.is_active,
        RoleMembership.id,
        RoleMembership.role,
        RoleMembership.scope_type,
        RoleMembership.scope_id,
    )
    .join(User, User.id == AuthSession.user_id)
    .outerjoin(RoleMembership, RoleMembership.user_id == AuthSession.user_id)
    .where(AuthSession.public_id == bindparam("session_public_id"))
    .order_by(RoleMembership.id)
)


def _load(session_public_id: str) -> Principal:
    # Through fetch_all, as SQLAlchemy's layers cost more than the query: an entry lives a minute, so a
    # resident coming back to the mini-program is nearly always loaded again.
    rows = fetch_all(_QUERY, {"session_public_id": session_public_id})
    if not rows:
        raise _Refused("unknown")
    user_id, revoked_at, public_id, is_active = rows[0][:4]
    if revoked_at is not None:
        raise _Refused("revoked")
    if not is_active:
        raise _Refused("disabled")
    memberships = tuple(Membership(*r[4:]) for r in rows if r[4] is not None)
    return Principal(user_id, public_id, session_public_id, memberships)


def live_principal(
    *, session_public_id: str, user_public_id: str, invalid: Unauthorized | None = None
) -> Principal:
    """The principal of a live session naming this user; Unauthorized (``invalid``, or the token's own
    error) for an unknown or foreign session, session_revoked, or 403 user_disabled."""
    invalid = invalid or Unauthorized("登录凭证无效，请重新登录", code="token_invalid")
    try:
        principal = principals.get(
            session_public_id, lambda: _load(session_public_id), tags=lambda p: (p.id,)
        )
    except _Refused as refused:
        if refused.reason == "revoked":
            raise Unauthorized("登录已注销，请重新登录", code="session_revoked") from None
        if refused.reason == "disabled":
            raise Forbidden("该账号已停用", code="user_disabled") from None
        raise invalid from None
    if principal.public_id != user_public_id:
        raise invalid
    return principal
