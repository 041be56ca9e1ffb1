"""Signing in with WeChat, API sessions and tokens, phone binding, and role memberships."""

import hmac
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from backend import clock, wechat
from backend.auth import tokens
from backend.auth.models import AuthSession, RoleMembership, User
from backend.auth.principals import Principal, live_principal
from backend.auth.roles import ROLE_SCOPES, Role, ScopeType
from backend.db import db
from backend.errors import ApiError, Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from backend.pagination import paginate
from backend.privacy import service as privacy


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: User
    token_type: str = "Bearer"


def _issue(session: AuthSession, refresh_token: str) -> TokenPair:
    cfg = current_app.config
    access = tokens.issue_access_token(
        secret=cfg["SECRET_KEY"],
        user_public_id=session.user.public_id,
        session_public_id=session.public_id,
        ttl=cfg["ACCESS_TOKEN_TTL"],
    )
    return TokenPair(access, cfg["ACCESS_TOKEN_TTL"], refresh_token, cfg["REFRESH_TOKEN_TTL"], session.user)


def _find_or_create_user(openid: str, unionid: str | None, nickname: str | None) -> User:
    user = db.session.scalar(select(User).where(User.openid == openid))
    if user is not None:
        return user
    user = User(openid=openid, unionid=unionid, nickname=nickname or "")
    try:
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError:  # the same person's first login raced on another device
        user = db.session.scalar(select(User).where(User.openid == openid))
    return user


def login_with_wechat_code(*, code: str, nickname: str | None = None) -> TokenPair:
    """Exchange a wx.login code for an API session, creating the user on first sign-in."""
    wx = wechat.client()
    result = wechat.exchange_code(code, wx.wxa.code_to_session, code)
    openid = result.get("openid")
    if not openid:
        raise ApiError("微信未返回用户标识", code="wechat_error", status=502)
    user = _find_or_create_user(openid, result.get("unionid"), nickname)
    if not user.is_active:
        raise Forbidden("该账号已停用", code="user_disabled")
    if result.get("unionid") and not user.unionid:
        user.unionid = result["unionid"]
    user.last_login_at = clock.now()
    session = AuthSession(user=user)
    refresh = _rotate(session)
    db.session.add(session)
    db.session.commit()
    return _issue(session, refresh)


def _new_refresh_token(session: AuthSession) -> tuple[str, dict]:
    """A new refresh token for the session, and the columns that make it the session's: its hash (only the
    hash is kept) and a new lifetime."""
    token = tokens.new_refresh_token(
        session_public_id=session.public_id, secret=current_app.config["SECRET_KEY"]
    )
    expires_at = clock.now() + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL"])
    return token, {"refresh_token_hash": tokens.hash_refresh_token(token), "refresh_expires_at": expires_at}


def _rotate(session: AuthSession) -> str:
    """Give a new session its refresh token, and its lifetime; return the token."""
    token, columns = _new_refresh_token(session)
    for name, value in columns.items():
        setattr(session, name, value)
    return token


def _rotate_if_current(session: AuthSession, digest: str, **columns) -> str | None:
    """Give the session a new refresh token only while ``digest`` is still its token's hash; return the new
    token, or None when another refresh rotated the presented token first.

    The condition is in the UPDATE itself: of one token presented several times at once, exactly one
    rotates it, on every database. A lock taken on reading (FOR UPDATE) made the others wait on
    PostgreSQL, but SQLite ignores it, and each request read the token as current and rotated it.
    """
    token, rotated = _new_refresh_token(session)
    result = db.session.execute(
        update(AuthSession)
        .where(AuthSession.id == session.id, AuthSession.refresh_token_hash == digest)
        .values(**rotated, **columns)
        .execution_options(synchronize_session=False)
    )
    return token if result.rowcount == 1 else None


def _revoke_for_reuse(session: AuthSession) -> None:
    if session.revoked_at is None:
        session.revoked_at = clock.now()
        session.revoked_reason = "refresh_token_reused"
        db.session.commit()


def _refresh_token_invalid() -> Unauthorized:
    return Unauthorized("刷新凭证无效，请重新登录", code="refresh_token_invalid")


def _session_of_refresh_token(refresh_token: str, digest: str) -> AuthSession:
    """The session a refresh token is the current token of, as read (refresh_session rotates it only if it
    still is). A token the session spent revokes it: a copy was taken, and whoever refreshed with it first
    (the thief or the owner) must not go on."""
    invalid = _refresh_token_invalid()
    named = tokens.refresh_token_session(refresh_token)
    if named is None:  # issued before tokens named their session: known by its hash alone
        session = db.session.scalar(select(AuthSession).where(AuthSession.refresh_token_hash == digest))
        if session is None:
            replayed = db.session.scalar(
                select(AuthSession).where(AuthSession.previous_refresh_token_hash == digest)
            )
            if replayed is not None:
                _revoke_for_reuse(replayed)
            raise invalid
        return session
    session = db.session.scalar(select(AuthSession).where(AuthSession.public_id == named))
    if session is None:
        raise invalid
    if not hmac.compare_digest(session.refresh_token_hash, digest):
        if tokens.issued_for_session(refresh_token, secret=current_app.config["SECRET_KEY"]):
            _revoke_for_reuse(session)
        raise invalid
    return session


def refresh_session(*, refresh_token: str) -> TokenPair:
    """Rotate a refresh token into a new pair; any token the session spent, presented again, revokes it."""
    digest = tokens.hash_refresh_token(refresh_token)
    session = _session_of_refresh_token(refresh_token, digest)
    if session.revoked_at is not None:
        raise Unauthorized("登录已注销，请重新登录", code="session_revoked")
    if session.refresh_expires_at <= clock.now():
        raise Unauthorized("登录已过期，请重新登录", code="refresh_token_expired")
    if not session.user.is_active:
        raise Forbidden("该账号已停用", code="user_disabled")
    kept = {}
    if tokens.refresh_token_session(refresh_token) is None:
        # The session's last token from before tokens named their session: its reuse is still caught by
        # this hash, however many rotations later (the tokens after it are caught by naming the session).
        kept["previous_refresh_token_hash"] = digest
    new_token = _rotate_if_current(session, digest, **kept)
    if new_token is None:
        # The same token rotated by another request a moment ago: it is spent, and presented again, as a
        # copy racing the owner would present it (nothing tells the owner's own double refresh from a
        # thief's), so the reuse rule applies. The winner's new pair ends with the session: as PostgreSQL
        # did already, where the loser waited for the winner's row lock and then found the token spent.
        _revoke_for_reuse(session)
        raise _refresh_token_invalid()
    db.session.commit()
    return _issue(session, new_token)


def revoke_session(*, session_public_id: str, reason: str = "logout") -> None:
    """End a signed-in session: its access and refresh tokens stop working at once."""
    session = db.session.scalar(select(AuthSession).where(AuthSession.public_id == session_public_id))
    if session is not None and session.revoked_at is None:
        session.revoked_at = clock.now()
        session.revoked_reason = reason
        db.session.commit()


def authenticate_bearer(header: str | None) -> Principal:
    """Return who is calling with an ``Authorization: Bearer`` header, or raise Unauthorized."""
    if not header:
        raise Unauthorized("请先登录", code="token_missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("请使用 Bearer 令牌登录", code="token_invalid")
    claims = tokens.read_access_token(token.strip(), secret=current_app.config["SECRET_KEY"])
    return live_principal(session_public_id=claims.session_public_id, user_public_id=claims.user_public_id)


def load_user(user_id: int) -> User:
    """The row of a signed-in user (whose session was just checked)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise Unauthorized("登录凭证无效，请重新登录", code="token_invalid")
    return user


def bind_phone(*, user: User, phone_code: str) -> User:
    """Bind the phone number WeChat vouches for (getPhoneNumber's code); needs the phone consent."""
    privacy.require_consent(user_id=user.id, kind="phone")
    wx = wechat.client()
    result = wechat.exchange_code(
        phone_code,
        wx.wxa._post,
        "wxa/business/getuserphonenumber",
        data={"code": phone_code},
        messages=wechat.PHONE_CODE_MESSAGES,
    )
    info = result.get("phone_info") or {}
    phone = _with_country(info)
    if not phone:
        raise ApiError("微信未返回手机号", code="wechat_error", status=502)
    privacy.store(user, "phone", phone, subject_user_id=user.id)
    db.session.commit()
    return user


def _with_country(info: dict) -> str | None:
    """A mainland number as its 11 digits; any other with its country code ("+852 61234567"), which the pure
    number alone would lose."""
    pure, country = info.get("purePhoneNumber"), str(info.get("countryCode") or "86")
    if not pure:
        return info.get("phoneNumber")
    return pure if country == "86" else f"+{country} {pure}"


def update_profile(*, user: User, real_name: str | None = None, id_number: str | None = None) -> User:
    """Update the caller's own real-name details; the ID number needs its consent first."""
    if real_name is not None:
        user.real_name = real_name
    if id_number is not None:
        privacy.store(user, "id_number", id_number, subject_user_id=user.id)
    db.session.commit()
    return user


def _scope_model(scope_type: str):
    from backend.community.models import Community, Grid, Street
    from backend.organizations.models import Organization

    return {
        ScopeType.STREET: Street,
        ScopeType.COMMUNITY: Community,
        ScopeType.GRID: Grid,
        ScopeType.ORGANIZATION: Organization,
    }[ScopeType(scope_type)]


def scope_public_id(scope_type: str, scope_id: int) -> str | None:
    obj = db.session.get(_scope_model(scope_type), scope_id)
    return None if obj is None else obj.public_id


def resolve_scope(scope_type: str, public_id: str) -> int:
    """Return the integer id of a street, community, grid or organization named by its public id."""
    model = _scope_model(scope_type)
    scope_id = db.session.scalar(select(model.id).where(model.public_id == public_id))
    if scope_id is None:
        raise NotFound("任职范围不存在", details={"scope_id": public_id})
    return scope_id


def grant_role(*, user: User, role: str, scope_type: str, scope_id: int) -> RoleMembership:
    """Give a user a role in one scope (idempotent)."""
    if ScopeType(scope_type) not in ROLE_SCOPES[Role(role)]:
        allowed = sorted(str(s) for s in ROLE_SCOPES[Role(role)])
        raise ValidationFailed(
            "该角色不能在此范围内任职", details={"scope_type": [f"{role} 只能属于: {', '.join(allowed)}"]}
        )
    same = select(RoleMembership).where(
        RoleMembership.user_id == user.id,
        RoleMembership.role == role,
        RoleMembership.scope_type == scope_type,
        RoleMembership.scope_id == scope_id,
    )
    existing = db.session.scalar(same)
    if existing is not None:
        return existing
    try:
        with db.session.begin_nested():
            membership = RoleMembership(user_id=user.id, role=role, scope_type=scope_type, scope_id=scope_id)
            db.session.add(membership)
    except IntegrityError:  # the same grant at the same time (a double tap on 登记): theirs stands
        membership = db.session.scalar(same)
    db.session.expire(user, ["memberships"])
    return membership


def residence_required(doing: str) -> Forbidden:
    """The 403 for someone who would ``doing`` (点单, 预约) for themself with no residence registered: where
    they live comes first (POST /me/residence), and makes them a resident."""
    return Forbidden(f"请先登记居住的网格再{doing}", code="residence_required")


def register_residence(*, user: User, grid_public_id: str) -> User:
    """Register the user as a resident of a grid (idempotent)."""
    grid_id = resolve_scope(ScopeType.GRID, grid_public_id)
    grant_role(user=user, role=Role.RESIDENT, scope_type=ScopeType.GRID, scope_id=grid_id)
    db.session.commit()
    return user


def leave_residence(*, user: User, grid_public_id: str) -> None:
    """Remove the user's registration as a resident of a grid (they moved): the grid's community staff no
    longer read their details by it; what they ordered or booked there stays as it was."""
    from backend.community.models import Grid

    membership = db.session.scalar(
        select(RoleMembership)
        .join(Grid, Grid.id == RoleMembership.scope_id)
        .where(
            Grid.public_id == grid_public_id,
            RoleMembership.user_id == user.id,
            RoleMembership.role == Role.RESIDENT,
            RoleMembership.scope_type == ScopeType.GRID,
        )
    )
    if membership is None:
        raise NotFound("未登记居住在该网格", details={"grid_id": grid_public_id})
    db.session.delete(membership)
    db.session.commit()


def _require_street_admin_over(actor: User, scope_type: str, scope_id: int) -> None:
    from backend.auth.access import holds
    from backend.community.service import ancestors

    if not holds(actor, [Role.STREET_ADMIN], ancestors(scope_type, scope_id)):
        raise Forbidden("只能在本街道范围内管理角色")


def grant_role_by_admin(
    *, actor: User, user_public_id: str, role: str, scope_type: str, scope_public_id: str
) -> RoleMembership:
    """Grant a role on a street admin's authority, within their own street. Not residence: where someone
    lives is theirs to register (POST /me/residence), and it decides whose staff may read their sensitive
    data, so an admin who could register anyone in their street could read anyone's."""
    if role == Role.RESIDENT:
        raise ValidationFailed(details={"role": ["居住网格须由居民本人登记"]})
    scope_id = resolve_scope(scope_type, scope_public_id)
    _require_street_admin_over(actor, scope_type, scope_id)
    target = get_user(user_public_id)
    if actor.id == target.id:
        raise Conflict("不能给自己授予或撤销角色", code="self_grant")
    membership = grant_role(user=target, role=role, scope_type=scope_type, scope_id=scope_id)
    db.session.commit()
    return membership


def revoke_role(*, actor: User, membership_public_id: str) -> None:
    """Withdraw a role on a street admin's authority, within their own street."""
    membership = db.session.scalar(
        select(RoleMembership).where(RoleMembership.public_id == membership_public_id)
    )
    if membership is None:
        raise NotFound("任职记录不存在")
    _require_street_admin_over(actor, membership.scope_type, membership.scope_id)
    if actor.id == membership.user_id:
        raise Conflict("不能给自己授予或撤销角色", code="self_grant")
    if membership.role == Role.STREET_ADMIN:
        _keep_a_street_admin(membership)
    elif membership.role == Role.VOLUNTEER:
        _keep_a_busy_volunteer(membership)
    elif membership.role == Role.PROXY_AGENT:
        _keep_a_busy_agent(membership)
    db.session.delete(membership)
    db.session.commit()


def _keep_a_busy_volunteer(membership: RoleMembership) -> None:
    """The volunteer role in an organization is its roster: revoking it takes the volunteer off, refused as
    removing them is while they are assigned to one of its orders not yet done (409 volunteer_busy)."""
    from backend.organizations.service import refuse_if_busy, roster_entry

    volunteer = roster_entry(organization_id=membership.scope_id, user_id=membership.user_id)
    if volunteer is not None:
        refuse_if_busy(volunteer)


def _keep_a_busy_agent(membership: RoleMembership) -> None:
    """Refuse to revoke a proxy agent's role while errands it covers (its community, or its street's
    communities) are in the agent's hands and no other agent role of theirs covers them: nobody could
    carry them on. 409 agent_busy naming them; the secretary reassigns them first."""
    from backend.community.service import places
    from backend.errands.service import in_agents_hands

    def covered(scope_type: str, scope_id: int) -> set[int]:
        if scope_type == ScopeType.COMMUNITY:
            return {scope_id}
        return {c.id for c in places().communities.values() if c.parent_id == scope_id}

    others = db.session.execute(
        select(RoleMembership.scope_type, RoleMembership.scope_id).where(
            RoleMembership.user_id == membership.user_id,
            RoleMembership.role == Role.PROXY_AGENT,
            RoleMembership.id != membership.id,
        )
    ).all()
    still = set().union(*(covered(t, i) for t, i in others))
    losing = covered(membership.scope_type, membership.scope_id) - still
    busy = in_agents_hands(agent_id=membership.user_id, community_ids=losing) if losing else []
    if busy:
        db.session.rollback()
        raise Conflict(
            f"该代办员还有未办结的代办：{'、'.join(busy)}，请先改派给其他代办员再撤销",
            code="agent_busy",
            details={"errands": busy},
        )


def _lock_street(street_id: int) -> None:
    """Hold the street until the commit: revokes of its street admins queue up, each counting the admins
    the one before it left. PostgreSQL locks the row; SQLite takes no lock for a read, so there the first
    write (a no-op UPDATE) takes the database's, and a revoke that read before another committed is run
    again (backend._retry_when_sqlite_is_busy)."""
    from backend.community.models import Street

    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(Street.id).where(Street.id == street_id).with_for_update())
    else:
        db.session.execute(
            update(Street)
            .where(Street.id == street_id)
            .values(name=Street.name)
            .execution_options(synchronize_session=False)
        )


def _keep_a_street_admin(membership: RoleMembership) -> None:
    """Refuse to revoke the street's last street-admin membership held by an active user: nobody but a
    street admin of it grants the role, so the street would be left with nobody to administer it."""
    _lock_street(membership.scope_id)
    still_there = select(RoleMembership.id).where(RoleMembership.id == membership.id)
    if db.session.scalar(still_there) is None:  # revoked by another admin a moment ago
        raise NotFound("任职记录不存在")
    others = db.session.scalar(
        select(func.count())
        .select_from(RoleMembership)
        .join(User, User.id == RoleMembership.user_id)
        .where(
            RoleMembership.role == Role.STREET_ADMIN,
            RoleMembership.scope_type == ScopeType.STREET,
            RoleMembership.scope_id == membership.scope_id,
            RoleMembership.id != membership.id,
            User.is_active.is_(True),
        )
    )
    if not others:
        raise Conflict(
            "不能撤销本街道最后一位街道管理员，请先授予他人街道管理员",
            code="last_street_admin",
            details={"membership_id": membership.public_id},
        )


@dataclass(frozen=True)
class MembershipRow:
    """A membership as a street admin's list shows it: its scope named, and who holds it."""

    public_id: str
    role: str
    scope_type: str
    scope_public_id: str
    scope_name: str
    user: User
    created_at: object


def _street_scopes(street_ids: set[int]):
    """The condition "the membership's scope lies in one of these streets": the street itself, its
    communities, their grids, its organizations."""
    from backend.community.models import Community, Grid
    from backend.organizations.models import Organization

    communities = select(Community.id).where(Community.street_id.in_(street_ids))
    grids = select(Grid.id).join(Community, Community.id == Grid.community_id)
    grids = grids.where(Community.street_id.in_(street_ids))
    organizations = select(Organization.id).where(Organization.street_id.in_(street_ids))
    return or_(
        and_(RoleMembership.scope_type == ScopeType.STREET, RoleMembership.scope_id.in_(street_ids)),
        and_(RoleMembership.scope_type == ScopeType.COMMUNITY, RoleMembership.scope_id.in_(communities)),
        and_(RoleMembership.scope_type == ScopeType.GRID, RoleMembership.scope_id.in_(grids)),
        and_(RoleMembership.scope_type == ScopeType.ORGANIZATION, RoleMembership.scope_id.in_(organizations)),
    )


def _filter_scope(field: str, scope_type: str, public_id: str, street_ids: set[int]) -> int:
    """The id of a scope a list is filtered by: 404 on the field for none, 403 for another street's."""
    from backend.community.service import ancestors

    model = _scope_model(scope_type)
    scope_id = db.session.scalar(select(model.id).where(model.public_id == public_id))
    if scope_id is None:
        raise NotFound("筛选的范围不存在", details={field: ["不存在"]})
    if not any(t == ScopeType.STREET and i in street_ids for t, i in ancestors(scope_type, scope_id)):
        raise Forbidden("只能查看本街道范围内的任职", details={field: ["不在本街道范围内"]})
    return scope_id


def _scope_names(memberships: list[RoleMembership]) -> dict[tuple[str, int], tuple[str, str]]:
    """(public id, name) of each scope the memberships are held in, one query per kind of scope."""
    wanted: dict[str, set[int]] = {}
    for m in memberships:
        wanted.setdefault(m.scope_type, set()).add(m.scope_id)
    found = {}
    for scope_type, ids in wanted.items():
        model = _scope_model(scope_type)
        for scope_id, public_id, name in db.session.execute(
            select(model.id, model.public_id, model.name).where(model.id.in_(ids))
        ):
            found[(scope_type, scope_id)] = (public_id, name)
    return found


def memberships_page(
    *,
    viewer,
    role: str | None = None,
    community_public_id: str | None = None,
    grid_public_id: str | None = None,
    organization_public_id: str | None = None,
    limit: int,
    cursor: str | None,
) -> dict:
    """List the memberships held in the streets the viewer administers, oldest first, a keyset page at a
    time; a scope filter takes in what lies under it (a community: its grids too)."""
    from backend.community.models import Grid

    street_ids = {m.scope_id for m in viewer.memberships if m.role == Role.STREET_ADMIN}
    query = select(RoleMembership).options(joinedload(RoleMembership.user)).where(_street_scopes(street_ids))
    if role is not None:
        query = query.where(RoleMembership.role == role)
    if community_public_id is not None:
        community_id = _filter_scope("community_id", ScopeType.COMMUNITY, community_public_id, street_ids)
        grids = select(Grid.id).where(Grid.community_id == community_id)
        kind, held_in = RoleMembership.scope_type, RoleMembership.scope_id
        query = query.where(
            or_(
                and_(kind == ScopeType.COMMUNITY, held_in == community_id),
                and_(kind == ScopeType.GRID, held_in.in_(grids)),
            )
        )
    for field, scope_type, public_id in (
        ("grid_id", ScopeType.GRID, grid_public_id),
        ("organization_id", ScopeType.ORGANIZATION, organization_public_id),
    ):
        if public_id is not None:
            scope_id = _filter_scope(field, scope_type, public_id, street_ids)
            query = query.where(RoleMembership.scope_type == scope_type, RoleMembership.scope_id == scope_id)
    page = paginate(query, RoleMembership.id, limit=limit, cursor=cursor)
    scopes = _scope_names(page["items"])
    page["items"] = [
        MembershipRow(
            m.public_id, m.role, m.scope_type, *scopes[(m.scope_type, m.scope_id)], m.user, m.created_at
        )
        for m in page["items"]
    ]
    return page


def user_public_id(user_id: int) -> str | None:
    """The opaque id of a user known by primary key (for responses)."""
    user = db.session.get(User, user_id)
    return None if user is None else user.public_id


def get_user(public_id: str) -> User:
    user = db.session.scalar(select(User).where(User.public_id == public_id))
    if user is None:
        raise NotFound("用户不存在")
    return user


def members_with_role(*, role: str, scope_type: str, scope_id: int) -> list[int]:
    """Return the ids of active users holding a role in exactly that scope (who to tell about it)."""
    return list(
        db.session.scalars(
            select(RoleMembership.user_id)
            .join(User, User.id == RoleMembership.user_id)
            .where(
                RoleMembership.role == role,
                RoleMembership.scope_type == scope_type,
                RoleMembership.scope_id == scope_id,
                User.is_active.is_(True),
            )
            .order_by(RoleMembership.user_id)
        )
    )
