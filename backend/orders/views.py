"""Reading orders: one order as its viewer may see it, and the lists each role works from (keyset pages)."""

import functools
from datetime import datetime

from sqlalchemy import bindparam, exists, null, or_, select, text, tuple_, union_all

from backend.auth.models import User
from backend.auth.principals import Person
from backend.auth.roles import Role, ScopeType
from backend.catalog.service import CategoryInfo, catalog
from backend.clock import to_local
from backend.community.service import overseen_community_ids, places
from backend.db import UTCDateTime, autocommit, db, fetch_all
from backend.errors import Forbidden
from backend.orders import service, states
from backend.orders.models import (
    NEEDS_ACTION_SQL,
    NO_DEADLINE,
    Order,
    OrderAssignment,
    OrderOffer,
    OrderStateCount,
    extension_asked,
    shown_event_data,
)
from backend.organizations.models import Organization, Volunteer
from backend.pagination import SMALLINT_BOUND, cursor_int, cursor_time, decode_parts, encode_parts
from backend.privacy.masking import mask_phone
from backend.sla.rules import SERVICE_KIND_LABELS
from backend.storage.schemas import small_url

OPEN_FOR_COUNTS = sorted(set(states.STATES) - states.FINAL_STATES)


def with_view(order: Order, viewer: Person) -> Order:
    """Attach what this viewer may see of the order (contact details, allowed actions, timeline)."""
    caller = service.caller_for(order, viewer)
    org = db.session.get(Organization, order.organization_id) if order.organization_id else None
    rating = service.rating_of(order)
    timeline = service.timeline(order)
    here = places()
    order.view = {
        "contact_visible": service.contact_visible(order, viewer, caller),
        "grid": here.grids[order.grid_id],
        "community": here.communities[order.community_id],
        "organization": None if org is None else {"id": org.public_id, "name": org.name},
        "offered_to": [{"id": o.public_id, "name": o.name} for o in service.offered_organizations(order)],
        "volunteers": [
            {"id": v.public_id, "name": v.display_name} for v in service.assigned_volunteers(order)
        ],
        "photos": photo_documents(order.public_id, service.photos(order), proof=False),
        "proof": photo_documents(order.public_id, service.photos(order, proof=True), proof=True),
        "rating": None
        if rating is None
        else {
            "level": rating.level,
            "level_label": rating.level_label,
            "tags": rating.tags,
            "comment": rating.comment,
        },
        "allowed_actions": service.offered_actions(order, caller, rated=rating is not None),
        "timeline": timeline,
        "actors": _public_ids({e.actor_id for e in timeline if e.actor_id is not None}),
    }
    return order


def _public_ids(user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(db.session.execute(select(User.id, User.public_id).where(User.id.in_(user_ids))).all())


def photo_documents(order_public_id: str, uploads, *, proof: bool) -> list[dict]:
    kind = "proof" if proof else "photos"
    urls = {u.public_id: f"/api/v1/orders/{order_public_id}/{kind}/{u.public_id}" for u in uploads}
    return [
        {
            "id": u.public_id,
            "content_type": u.content_type,
            "url": urls[u.public_id],
            "small_url": small_url(urls[u.public_id]),
        }
        for u in uploads
    ]


def _local(value: datetime | None) -> str | None:
    return None if value is None else to_local(value).isoformat()


def document(order) -> dict:
    """One order as its viewer may see it: the JSON of OrderSchema, from an order (or its columns as plain
    attributes) and the ``view`` attached to it; tests/orders/test_order_views.py holds the two equal."""
    view = order.view
    visible = view["contact_visible"]
    grid, community = view["grid"], view["community"]
    name = order.contact_name
    doc = summary(_summary_row(order), catalog().by_id)
    doc.update(
        answers=order.answers,
        address=order.address if visible else f"{community.name}{grid.name}（接单后可见详细地址）",
        contact_name=name if visible else name[:1] + "*" * max(1, len(name) - 1),
        contact_phone=order.contact_phone if visible else mask_phone(order.contact_phone),
        contact_masked=not visible,
        entered_on_behalf=order.entered_by_role is not None,
        grid_id=grid.public_id,
        grid_name=grid.name,
        community_id=community.public_id,
        community_name=community.name,
        latitude=order.latitude if visible else None,
        longitude=order.longitude if visible else None,
        preferred_start=_local(order.preferred_start),
        preferred_end=_local(order.preferred_end),
        organization=view["organization"],
        offered_to=view["offered_to"],
        volunteers=view["volunteers"],
        photos=view["photos"],
        proof=view["proof"],
        resolution_note=order.resolution_note,
        extension_request=_pending_extension(order.extension_request),
        extension_granted=order.extension_granted,
        return_count=order.return_count,
        reopen_count=order.reopen_count,
        rating=view["rating"],
        allowed_actions=view["allowed_actions"],
        allowed_action_labels=[states.ACTION_LABELS[a] for a in view["allowed_actions"]],
        timeline=[_event_document(e, view["actors"]) for e in view["timeline"]],
        accepted_at=_local(order.accepted_at),
        dispatched_at=_local(order.dispatched_at),
        taken_at=_local(order.taken_at),
        resolved_at=_local(order.resolved_at),
        closed_at=_local(order.closed_at),
    )
    return doc


def _pending_extension(request: dict | None) -> dict | None:
    """An extension request as it is shown (PendingExtensionSchema): as asked, and how long in words."""
    return None if request is None else {**request, "label": extension_asked(request).label()}


def _event_document(event, actors: dict[int, str]) -> dict:
    """One timeline event (EventSchema)."""
    return {
        "at": _local(event.at),
        "action": event.action,
        "action_label": states.ACTION_LABELS.get(event.action, event.action),
        "actor_role": event.actor_role,
        "by_system": event.actor_id is None,
        "actor_id": None if event.actor_id is None else actors.get(event.actor_id),
        "from_state": event.from_state,
        "to_state": event.to_state,
        "to_state_label": states.STATE_LABELS[event.to_state],
        "note": event.note,
        "data": shown_event_data(event.data),
    }


def _summary_row(order) -> tuple:
    """An order's SUMMARY_COLUMNS, read from its attributes."""
    return (
        order.id,
        order.public_id,
        order.number,
        order.category_id,
        order.service_kind,
        order.urgency_rank,
        order.state,
        order.description,
        order.due_at,
        order.warn_at,
        order.is_overdue,
        order.is_supervised,
        order.possible_duplicate_of_id is not None,
        order.extension_request is not None,
        order.pool,
        order.created_at,
    )


# Lists: the columns a summary shows, read without loading orders (no decryption, no ORM objects), turned
# into the JSON of OrderSummarySchema by hand; tests/orders/test_order_views.py holds the two equal.

SUMMARY_COLUMNS = (
    Order.id,
    Order.public_id,
    Order.number,
    Order.category_id,
    Order.service_kind,
    Order.urgency_rank,
    Order.state,
    Order.description,
    Order.due_at,
    Order.warn_at,
    Order.is_overdue,
    Order.is_supervised,
    Order.possible_duplicate_of_id.is_not(None).label("possible_duplicate"),
    Order.extension_request.is_not(None).label("extension_requested"),
    Order.pool,
    Order.created_at,
)


def summary(row, categories: dict[int, CategoryInfo]) -> dict:
    """One order as lists show it (OrderSummarySchema), from a row of SUMMARY_COLUMNS."""
    # Unpacked at once: a list page builds twenty of these, and naming each field of a Row costs more.
    (
        _id, public_id, number, category_id, kind, _rank, state, description, due_at, warn_at,
        overdue, supervised, duplicate, extension, pool, created_at,
    ) = row  # fmt: skip
    category = categories[category_id]
    return {
        "id": public_id,
        "number": number,
        "category": category.code,
        "category_name": category.name,
        "service_kind": kind,
        "service_kind_label": SERVICE_KIND_LABELS[kind],
        "state": state,
        "state_label": states.STATE_LABELS[state],
        "description": description,
        "due_at": None if due_at >= NO_DEADLINE else to_local(due_at).isoformat(),
        "warn_at": None if warn_at is None else to_local(warn_at).isoformat(),
        "is_overdue": overdue,
        "is_supervised": supervised,
        "possible_duplicate": bool(duplicate),
        "extension_requested": bool(extension),
        "pool": pool,
        "created_at": to_local(created_at).isoformat(),
    }


def _page(connection, query, *, order_by, key, limit: int) -> dict:
    return _page_of(
        connection.execute(query.order_by(*order_by).limit(limit + 1)).all(), limit=limit, key=key
    )


def _page_of(rows, *, limit: int, key) -> dict:
    """``limit`` summaries of rows fetched ``limit + 1`` at a time, and the cursor after them if more."""
    more = len(rows) > limit
    rows = rows[:limit]
    categories = catalog().by_id
    return {
        "items": [summary(row, categories) for row in rows],
        "next_cursor": encode_parts(key(rows[-1])) if more and rows else None,
    }


# Keyset cursors over (urgency_rank, due_at, id) or over id alone.


_RANK, _DUE, _ID = ([c.key for c in SUMMARY_COLUMNS].index(name) for name in ("urgency_rank", "due_at", "id"))


def _board_order(row) -> tuple:
    return row[_RANK], row[_DUE], row[_ID]


def _board_key(row) -> list:
    return [row[_RANK], row[_DUE].isoformat(), row[_ID]]


def _page_by_urgency(connection, query, *, limit: int, cursor: str | None) -> dict:
    key = tuple_(Order.urgency_rank, Order.due_at, Order.id)
    if cursor:
        after = _board_cursor(cursor)
        query = query.where(key > (after["after_rank"], after["after_due"], after["after_id"]))
    return _page(
        connection,
        query,
        order_by=(Order.urgency_rank, Order.due_at, Order.id),
        key=_board_key,
        limit=limit,
    )


def _page_newest(connection, query, *, limit: int, cursor: str | None) -> dict:
    if cursor:
        (last_id,) = decode_parts(cursor, 1)
        query = query.where(Order.id < cursor_int(last_id))
    return _page(connection, query, order_by=(Order.id.desc(),), key=lambda row: [row[_ID]], limit=limit)


def my_orders(*, resident, state: str | None, limit: int, cursor: str | None) -> dict:
    """A resident's own orders, newest first."""
    return _newest_where(Order.resident_id == resident.id, state=state, limit=limit, cursor=cursor)


def grid_orders(*, grid_id: int, state: str | None, limit: int, cursor: str | None) -> dict:
    """A grid's orders, newest first: what its grid worker entered for residents (代录) and what they
    ordered themselves, to follow up on door to door (ix_orders_grid)."""
    return _newest_where(Order.grid_id == grid_id, state=state, limit=limit, cursor=cursor)


def _newest_where(condition, *, state: str | None, limit: int, cursor: str | None) -> dict:
    query = select(*SUMMARY_COLUMNS).where(condition)
    if state:
        query = query.where(Order.state == state)
    with autocommit() as connection:
        return _page_newest(connection, query, limit=limit, cursor=cursor)


def _community_filter(viewer, community_public_id: str | None) -> list[int]:
    overseen = overseen_community_ids(viewer)
    if community_public_id is None:
        return overseen
    community = places().communities_by_public_id.get(community_public_id)
    community_id = community.id if community is not None else None
    if community_id is None or community_id not in overseen:
        raise Forbidden("只能查看本社区（街道）的工单")
    return [community_id]


# The board in one statement, built once per shape (which filters are given): building a select() costs
# more than PostgreSQL takes to answer it. The page's rows come first, then the community's counts, as rows
# whose summary columns are null.


@functools.cache
def _board_statement(one_community: bool, filters: frozenset[str], needs_action: bool, after: bool):
    def in_communities(column):
        if one_community:
            return column == bindparam("community_id")
        return column.in_(bindparam("community_ids", expanding=True))

    query = select(*SUMMARY_COLUMNS).where(in_communities(Order.community_id))
    if needs_action:
        # The same text as ix_orders_board_needs_action's condition, constants and all, so it is used.
        query = query.where(text(f"({NEEDS_ACTION_SQL})"))
    for column in _BOARD_FILTERS:
        if column in filters:
            query = query.where(getattr(Order, column) == bindparam(column))
    if after:
        query = query.where(
            tuple_(Order.urgency_rank, Order.due_at, Order.id)
            > tuple_(
                bindparam("after_rank", type_=Order.urgency_rank.type),
                bindparam("after_due", type_=UTCDateTime()),
                bindparam("after_id", type_=Order.id.type),
            )
        )
    page = query.order_by(Order.urgency_rank, Order.due_at, Order.id).limit(bindparam("limit")).subquery()
    counted = OrderStateCount
    return union_all(
        select(page, null().label("counted_state"), null().label("counted")),
        select(*(null() for _ in SUMMARY_COLUMNS), counted.state, counted.orders).where(
            in_communities(counted.community_id)
        ),
    )


_BOARD_FILTERS = (
    "id", "number", "state", "service_kind", "category_id", "grid_id", "is_overdue", "is_supervised"
)  # fmt: skip
_LARGEST_ID = 2**31 - 1  # orders.id is an INTEGER


def _id_in_number(number: str) -> int:
    """The order id a number names (its day, then the id: placing._number); an id no order can have when
    the digits are too many for one."""
    order_id = int(number[8:])
    return order_id if order_id <= _LARGEST_ID else 0


def _board_cursor(cursor: str) -> dict:
    rank, due, last_id = decode_parts(cursor, 3)
    return {
        "after_rank": cursor_int(rank, SMALLINT_BOUND),
        "after_due": cursor_time(due),
        "after_id": cursor_int(last_id),
    }


def dispatch_board(
    *,
    viewer,
    community_public_id: str | None = None,
    service_kind: str | None = None,
    category: str | None = None,
    grid_public_id: str | None = None,
    state: str | None = None,
    overdue: bool | None = None,
    supervised: bool | None = None,
    needs_action: bool = True,
    number: str | None = None,
    limit: int,
    cursor: str | None,
) -> dict:
    """The secretary's board: their community's orders, most urgent and nearest deadline first, with how
    many of them are in each open state; or, given a ``number``, the order of that number (in any state)."""
    community_ids = _community_filter(viewer, community_public_id)
    one_community = len(community_ids) == 1
    params: dict = {"limit": limit + 1}
    params.update({"community_id": community_ids[0]} if one_community else {"community_ids": community_ids})
    filters = {
        "state": state,
        "service_kind": service_kind,
        # An unknown category or grid matches no order (no order has a null one).
        "category_id": (catalog().by_code.get(category) or _NONE).id if category else None,
        "grid_id": _grid_id(grid_public_id) if grid_public_id else None,
        "is_overdue": overdue,
        "is_supervised": supervised,
        # Found by its id, which the number holds, and held to the whole number (a wrong day finds nothing).
        "id": _id_in_number(number) if number else None,
        "number": number,
    }
    filters = {column: value for column, value in filters.items() if value is not None}
    params.update(filters)
    if cursor:
        params.update(_board_cursor(cursor))
    statement = _board_statement(
        one_community, frozenset(filters), needs_action and not state and not number, cursor is not None
    )
    if one_community:
        rows = fetch_all(statement, params)
    else:  # the IN list's length changes the SQL: SQLAlchemy writes it each time
        with autocommit() as connection:
            rows = connection.execute(statement, params).all()
    counts = dict.fromkeys(OPEN_FOR_COUNTS, 0)
    orders = []
    width = len(SUMMARY_COLUMNS)
    for row in rows:
        if row[0] is not None:
            orders.append(row[:width])
        elif row[width] in counts:
            counts[row[width]] += row[width + 1]
    orders.sort(key=_board_order)
    page = _page_of(orders, limit=limit, key=_board_key)
    page["counts"] = counts
    return page


class _NONE:
    id = -1


def _grid_id(public_id: str) -> int:
    grid = places().grids_by_public_id.get(public_id)
    return grid.id if grid is not None else -1


def organization_board(
    *, viewer, organization: Organization, state: str | None, limit: int, cursor: str | None
) -> dict:
    """An organization's orders: offered to it and not yet taken, or held by it."""
    if organization.id not in viewer.scope_ids(Role.ORG_ADMIN, ScopeType.ORGANIZATION):
        raise Forbidden("只能查看本组织的工单")
    offered = exists().where(
        OrderOffer.order_id == Order.id,
        OrderOffer.organization_id == organization.id,
        OrderOffer.active.is_(True),
    )
    query = select(*SUMMARY_COLUMNS).where(or_(Order.organization_id == organization.id, offered))
    if state:
        query = query.where(Order.state == state)
    else:
        query = query.where(Order.state.in_(sorted(set(states.STATES) - states.FINAL_STATES)))
    with autocommit() as connection:
        return _page_by_urgency(connection, query, limit=limit, cursor=cursor)


def volunteer_board(*, viewer, state: str | None, limit: int, cursor: str | None) -> dict:
    """A volunteer's assignments across the organizations they serve."""
    volunteer_ids = select(Volunteer.id).where(Volunteer.user_id == viewer.id)
    assigned = exists().where(
        OrderAssignment.order_id == Order.id, OrderAssignment.volunteer_id.in_(volunteer_ids)
    )
    # Only the organizations whose roster they are on (their volunteer role there): one who left sees none.
    serving = sorted(
        m.scope_id
        for m in viewer.memberships
        if m.role == Role.VOLUNTEER and m.scope_type == ScopeType.ORGANIZATION
    )
    query = select(*SUMMARY_COLUMNS).where(assigned, Order.organization_id.in_(serving))
    if state:
        query = query.where(Order.state == state)
    with autocommit() as connection:
        return _page_by_urgency(connection, query, limit=limit, cursor=cursor)
