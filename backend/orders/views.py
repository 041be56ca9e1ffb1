"""Reading orders: one order as its viewer may see it, and the lists each role works from (keyset pages)."""

import base64
import binascii
import json
from datetime import datetime

from sqlalchemy import exists, func, or_, select, text, tuple_

from backend.auth.models import User
from backend.auth.roles import Role, ScopeType
from backend.community.models import Community, Grid
from backend.community.service import overseen_community_ids
from backend.db import db
from backend.errors import Forbidden, ValidationFailed
from backend.orders import service, states
from backend.orders.models import NEEDS_ACTION_SQL, Order, OrderAssignment, OrderOffer
from backend.organizations.models import Organization, Volunteer

OPEN_FOR_COUNTS = sorted(set(states.STATES) - states.FINAL_STATES)


def with_view(order: Order, viewer: User) -> Order:
    """Attach what this viewer may see of the order (contact details, allowed actions, timeline)."""
    caller = service.caller_for(order, viewer)
    visible = service.contact_visible(order, viewer, caller)
    org = db.session.get(Organization, order.organization_id) if order.organization_id else None
    rating = service.rating_of(order)
    order.view = {
        "contact_visible": visible,
        "grid": db.session.get(Grid, order.grid_id),
        "community": db.session.get(Community, order.community_id),
        "organization": None if org is None else {"id": org.public_id, "name": org.name},
        "offered_to": [{"id": o.public_id, "name": o.name} for o in service.offered_organizations(order)],
        "volunteers": [
            {"id": v.public_id, "name": v.display_name} for v in service.assigned_volunteers(order)
        ],
        "photos": _photos(order, proof=False),
        "proof": _photos(order, proof=True),
        "rating": None
        if rating is None
        else {
            "level": rating.level,
            "level_label": rating.level_label,
            "tags": rating.tags,
            "comment": rating.comment,
        },
        "allowed_actions": [
            a for a in states.allowed_actions(order.state, caller.actors) if a != "auto_close"
        ],
        "timeline": service.timeline(order),
    }
    return order


def _photos(order: Order, *, proof: bool) -> list[dict]:
    kind = "proof" if proof else "photos"
    return [
        {
            "id": u.public_id,
            "content_type": u.content_type,
            "url": f"/api/v1/orders/{order.public_id}/{kind}/{u.public_id}",
        }
        for u in service.photos(order, proof=proof)
    ]


# Keyset cursors over (urgency_rank, due_at, id) or over id alone.


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str, size: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        return values
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("分页游标无效", details={"cursor": ["无效的游标"]}) from exc


def _board_key(order: Order) -> list:
    return [order.urgency_rank, order.due_at.isoformat(), order.id]


def _page_by_urgency(query, *, limit: int, cursor: str | None) -> dict:
    key = tuple_(Order.urgency_rank, Order.due_at, Order.id)
    if cursor:
        rank, due, last_id = _decode(cursor, 3)
        try:
            after = (int(rank), datetime.fromisoformat(due), int(last_id))
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("分页游标无效", details={"cursor": ["无效的游标"]}) from exc
        query = query.where(key > after)
    rows = list(
        db.session.scalars(query.order_by(Order.urgency_rank, Order.due_at, Order.id).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": _encode(_board_key(rows[-1])) if more and rows else None}


def _page_newest(query, *, limit: int, cursor: str | None) -> dict:
    if cursor:
        (last_id,) = _decode(cursor, 1)
        if not isinstance(last_id, int):
            raise ValidationFailed("分页游标无效", details={"cursor": ["无效的游标"]})
        query = query.where(Order.id < last_id)
    rows = list(db.session.scalars(query.order_by(Order.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": _encode([rows[-1].id]) if more and rows else None}


def my_orders(*, resident: User, state: str | None, limit: int, cursor: str | None) -> dict:
    """A resident's own orders, newest first."""
    query = select(Order).where(Order.resident_id == resident.id)
    if state:
        query = query.where(Order.state == state)
    return _page_newest(query, limit=limit, cursor=cursor)


def _community_filter(viewer: User, community_public_id: str | None) -> list[int]:
    overseen = overseen_community_ids(viewer)
    if community_public_id is None:
        return overseen
    community_id = db.session.scalar(select(Community.id).where(Community.public_id == community_public_id))
    if community_id is None or community_id not in overseen:
        raise Forbidden("只能查看本社区（街道）的工单")
    return [community_id]


def dispatch_board(
    *,
    viewer: User,
    community_public_id: str | None = None,
    service_kind: str | None = None,
    category: str | None = None,
    grid_public_id: str | None = None,
    state: str | None = None,
    overdue: bool | None = None,
    supervised: bool | None = None,
    needs_action: bool = True,
    limit: int,
    cursor: str | None,
) -> dict:
    """The secretary's board: their community's orders, most urgent and nearest deadline first."""
    community_ids = _community_filter(viewer, community_public_id)
    query = select(Order).where(Order.community_id.in_(community_ids))
    if state:
        query = query.where(Order.state == state)
    elif needs_action:
        # The same text as ix_orders_board_needs_action's condition, constants and all, so it is used.
        query = query.where(text(f"({NEEDS_ACTION_SQL})"))
    if service_kind:
        query = query.where(Order.service_kind == service_kind)
    if category:
        from backend.catalog.models import ServiceCategory

        query = query.where(
            Order.category_id
            == select(ServiceCategory.id).where(ServiceCategory.code == category).scalar_subquery()
        )
    if grid_public_id:
        query = query.where(
            Order.grid_id == select(Grid.id).where(Grid.public_id == grid_public_id).scalar_subquery()
        )
    if overdue is not None:
        query = query.where(Order.is_overdue.is_(overdue))
    if supervised is not None:
        query = query.where(Order.is_supervised.is_(supervised))
    page = _page_by_urgency(query, limit=limit, cursor=cursor)
    counts = dict(
        db.session.execute(
            select(Order.state, func.count())
            .where(Order.community_id.in_(community_ids), Order.state.in_(OPEN_FOR_COUNTS))
            .group_by(Order.state)
        ).all()
    )
    page["counts"] = {s: counts.get(s, 0) for s in OPEN_FOR_COUNTS}
    return page


def organization_board(
    *, viewer: User, organization: Organization, state: str | None, limit: int, cursor: str | None
) -> dict:
    """An organization's orders: offered to it and not yet taken, or held by it."""
    admin_of = {
        m.scope_id
        for m in viewer.memberships
        if m.role == Role.ORG_ADMIN and m.scope_type == ScopeType.ORGANIZATION
    }
    if organization.id not in admin_of:
        raise Forbidden("只能查看本组织的工单")
    offered = exists().where(
        OrderOffer.order_id == Order.id,
        OrderOffer.organization_id == organization.id,
        OrderOffer.active.is_(True),
    )
    query = select(Order).where(or_(Order.organization_id == organization.id, offered))
    if state:
        query = query.where(Order.state == state)
    else:
        query = query.where(Order.state.in_(sorted(set(states.STATES) - states.FINAL_STATES)))
    return _page_by_urgency(query, limit=limit, cursor=cursor)


def volunteer_board(*, viewer: User, state: str | None, limit: int, cursor: str | None) -> dict:
    """A volunteer's assignments across the organizations they serve."""
    volunteer_ids = select(Volunteer.id).where(Volunteer.user_id == viewer.id)
    assigned = exists().where(
        OrderAssignment.order_id == Order.id, OrderAssignment.volunteer_id.in_(volunteer_ids)
    )
    query = select(Order).where(
        assigned,
        Order.organization_id.in_(select(Volunteer.organization_id).where(Volunteer.user_id == viewer.id)),
    )
    if state:
        query = query.where(Order.state == state)
    return _page_by_urgency(query, limit=limit, cursor=cursor)
