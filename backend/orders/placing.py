"""Placing an order (点单): check what is asked, then write the order, its first timeline event, the note
to tell the community's secretaries (outbox) and the Idempotency-Key's record, in one transaction.

It is the API's busiest write, so it stays lean: the catalog, the caller's roles and the grids come from
the process's caches, nothing goes through the ORM's unit of work, and on PostgreSQL the four rows travel
as one statement (INSERTs inside a WITH: one round trip, one snapshot, the likely duplicate found in the
same statement), which is the whole transaction unless photos are attached or an urgent order's clocks
start (through the services, in the session's transaction). SQLite has no INSERT inside WITH: there the
same rows are written one after another in the session's transaction.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

import psycopg
from sqlalchemy import insert, select, update

from backend import clock
from backend.auth.models import User
from backend.auth.principals import Person
from backend.auth.roles import Role, ScopeType
from backend.auth.service import residence_required
from backend.catalog import questions
from backend.catalog.service import catalog
from backend.community.service import Place, places
from backend.db import autocommit_driver_connection, db, new_public_id
from backend.errors import Forbidden, ValidationFailed
from backend.idempotency import Claim, IdempotentRequest, KeyTaken
from backend.orders import service, states, views
from backend.orders.models import NO_DEADLINE, URGENCY_RANK, Order, OrderEvent
from backend.outbox import service as outbox
from backend.privacy import crypto
from backend.storage import service as storage

ANNOUNCE_JOB = "orders.announce_placed"
KEY_CONSTRAINT = "pk_idempotent_requests"
OPEN_STATES_SQL = ", ".join(f"'{s}'" for s in sorted(service.OPEN_STATES))


@dataclass
class Placed:
    """A new order as just written: its columns as attributes, with the placer's ``view`` attached, ready
    for orders.views.document."""

    order: SimpleNamespace


def place_order(
    *,
    actor: Person,
    category_code: str,
    description: str,
    address: str,
    contact_name: str,
    contact_phone: str,
    answers: dict | None = None,
    grid_public_id: str | None = None,
    resident_public_id: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    preferred_start: datetime | None = None,
    preferred_end: datetime | None = None,
    photo_ids: list[str] | None = None,
    claim: Claim | None = None,
) -> Placed:
    """Place an order (点单) for oneself, or for a resident (代录), and record ``claim`` with it; the
    caller commits."""
    category = catalog().by_code.get(category_code)
    if category is None or not category.enabled:
        raise ValidationFailed(details={"category": ["服务分类不存在或已停用"]})
    clean, errors = questions.check_answers(list(category.questions), answers or {})
    if errors:
        raise ValidationFailed("请检查填写的内容", details={"answers": errors})
    if preferred_start and preferred_end and preferred_end <= preferred_start:
        raise ValidationFailed(details={"preferred_end": ["结束时间须晚于开始时间"]})
    now = clock.now()
    # A window that has already ended asks for nothing anyone can do (a start alone: that moment).
    field, latest = "preferred_end", preferred_end
    if latest is None:
        field, latest = "preferred_start", preferred_start
    if latest is not None and latest <= now:
        raise ValidationFailed(details={field: ["期望服务时间已过，请重新选择"]})
    resident_id, grid, entered_by_role = _placing_for(actor, resident_public_id, grid_public_id)
    order = SimpleNamespace(
        public_id=new_public_id(Order.PUBLIC_ID_PREFIX),
        resident_id=resident_id,
        entered_by_id=actor.id if entered_by_role else None,
        entered_by_role=entered_by_role,
        category_id=category.id,
        service_kind=category.service_kind,
        urgency_rank=URGENCY_RANK[category.service_kind],
        community_id=grid.parent_id,
        grid_id=grid.id,
        description=description,
        answers=clean,
        address=address,
        contact_name=contact_name,
        contact_phone=contact_phone,
        latitude=latitude,
        longitude=longitude,
        preferred_start=preferred_start,
        preferred_end=preferred_end,
        state="submitted",
        organization_id=None,
        pool=False,
        due_at=NO_DEADLINE,
        warn_at=None,
        is_overdue=False,
        is_supervised=False,
        return_count=0,
        reopen_count=0,
        dispatch_count=0,
        extension_request=None,
        extension_granted=False,
        resolution_note="",
        accepted_at=None,
        dispatched_at=None,
        taken_at=None,
        resolved_at=None,
        closed_at=None,
        created_at=now,
        updated_at=now,
        version=1,
    )
    role = entered_by_role or states.OWNER
    event = SimpleNamespace(
        at=now, actor_id=actor.id, actor_role=role, action="place", from_state=None, to_state="submitted"
    )
    event.note = "代录" if entered_by_role else ""
    urgent = category.service_kind == "urgent"
    if db.engine.dialect.name != "postgresql":
        written = _write_in_steps(db.session.connection(), order, event, claim)
    elif photo_ids or urgent:
        in_session = db.session.connection().connection.driver_connection
        written = _write_in_one_statement(in_session, order, event, claim)
    else:
        # Nothing else to do in the transaction: the statement is the transaction (no BEGIN, no COMMIT).
        with autocommit_driver_connection() as alone:
            written = _write_in_one_statement(alone, order, event, claim)
    order.id, order.number, order.possible_duplicate_of_id, duplicate = written
    event.data = _place_data(duplicate)
    uploads = []
    if photo_ids:
        uploads = storage.attach(
            owner_id=actor.id,
            public_ids=photo_ids,
            attached_type=service.SUBJECT,
            attached_id=order.id,
            field="photo_ids",
        )
    if urgent:
        started = service.start_urgent_clocks(db.session.get(Order, order.id))
        order.due_at, order.warn_at = started.due_at, started.warn_at
    order.view = _placer_view(order, actor, grid, uploads, event)
    return Placed(order)


def no_residence() -> Forbidden:
    """For placing one's own order with no residence registered; the route's answer, too, to anyone holding
    no role that places (most likely someone new)."""
    return residence_required("点单")


def _placing_for(actor: Person, resident_public_id: str | None, grid_public_id: str | None):
    """Return (resident id, grid, entered_by_role): the resident themself, or a grid worker's or a
    secretary's 代录 for a resident of their grid or community."""
    here = places()
    grid = None
    if grid_public_id is not None:
        grid = here.grids_by_public_id.get(grid_public_id)
        if grid is None:
            raise ValidationFailed(details={"grid_id": ["网格不存在"]})
    if resident_public_id is None or resident_public_id == actor.public_id:  # naming oneself is no 代录
        homes = service.scope_ids(actor, Role.RESIDENT, ScopeType.GRID)
        if not homes:
            raise no_residence()
        if grid is None:
            if len(homes) > 1:
                raise ValidationFailed(details={"grid_id": ["您登记了多个网格，请选择本次服务的网格"]})
            grid = here.grids[next(iter(homes))]
        elif grid.id not in homes:
            raise ValidationFailed(details={"grid_id": ["只能在自己登记的网格点单"]})
        return actor.id, grid, None
    resident = db.session.scalar(select(User).where(User.public_id == resident_public_id))
    homes = service.scope_ids(resident, Role.RESIDENT, ScopeType.GRID) if resident is not None else set()
    if not homes:
        raise ValidationFailed(details={"resident_id": ["居民不存在或未登记网格"]})
    grid = grid or here.grids[min(homes)]
    if grid.id not in homes:
        raise ValidationFailed(details={"grid_id": ["该居民未登记在这个网格"]})
    if grid.id in service.scope_ids(actor, Role.GRID_WORKER, ScopeType.GRID):
        return resident.id, grid, str(Role.GRID_WORKER)
    if grid.parent_id in service.scope_ids(actor, Role.SECRETARY, ScopeType.COMMUNITY):
        return resident.id, grid, str(Role.SECRETARY)
    raise Forbidden("只能为本网格或本社区的居民代录", code="out_of_scope")


def _placer_view(order, actor: Person, grid: Place, uploads, event) -> dict:
    """What the one who placed it sees of a new order: everything; no organization, offer or rating yet."""
    caller = service.caller_for(order, actor)
    return {
        "contact_visible": True,
        "grid": grid,
        "community": places().communities[grid.parent_id],
        "organization": None,
        "offered_to": [],
        "volunteers": [],
        "photos": views.photo_documents(order.public_id, uploads, proof=False),
        "proof": [],
        "rating": None,
        "allowed_actions": service.offered_actions(order, caller),
        "timeline": [event],
        "actors": {actor.id: actor.public_id},
    }


# Writing: (id, number, likely duplicate's id, its public id) back. On PostgreSQL through psycopg itself
# (SQLAlchemy's layers around one statement cost more than the statement), its text kept here whole.


def _place_data(duplicate_public_id: str | None) -> dict:
    """The place event's data: the likely duplicate by its public id, the only id the API names orders by."""
    return {"possible_duplicate_of": duplicate_public_id} if duplicate_public_id else {}


def _number(day: str, order_id: int) -> str:
    return f"{day}{order_id:08d}"


_ONE_STATEMENT = """
WITH new_order AS (
    SELECT nextval('orders_id_seq') AS id
), duplicate AS (
    -- Looked up once for its three readers (a WITH query named more than once is computed once). Newest
    -- first and stop at the first: a prepared statement's generic plan would otherwise aggregate over
    -- every order the resident ever placed.
    SELECT id, public_id FROM orders
    WHERE resident_id = %(resident_id)s AND category_id = %(category_id)s AND state IN ({open_states})
    ORDER BY id DESC LIMIT 1
), placed AS (
    INSERT INTO orders (
        id, public_id, number, resident_id, entered_by_id, entered_by_role, category_id, service_kind,
        urgency_rank, community_id, grid_id, description, answers, address, contact_name, contact_phone,
        latitude, longitude, preferred_start, preferred_end, state, pool, due_at, is_overdue, is_supervised,
        possible_duplicate_of_id, return_count, reopen_count, dispatch_count, extension_granted,
        resolution_note, created_at, updated_at, version
    )
    SELECT
        id, %(public_id)s,
        %(day)s || CASE WHEN id < 100000000 THEN lpad(id::text, 8, '0') ELSE id::text END,
        %(resident_id)s, %(entered_by_id)s::integer, %(entered_by_role)s::varchar, %(category_id)s,
        %(service_kind)s, %(urgency_rank)s, %(community_id)s, %(grid_id)s, %(description)s,
        %(answers)s::json, %(address)s, %(contact_name)s, %(contact_phone)s, %(latitude)s::float8,
        %(longitude)s::float8, %(preferred_start)s::timestamptz, %(preferred_end)s::timestamptz,
        'submitted', false, %(due_at)s, false, false, (SELECT id FROM duplicate),
        0, 0, 0, false, '', %(now)s, %(now)s, 1
    FROM new_order
    RETURNING id, number, possible_duplicate_of_id
), event AS (
    INSERT INTO order_events (order_id, at, actor_id, actor_role, action, from_state, to_state, note, data)
    SELECT
        id, %(now)s, %(actor_id)s, %(actor_role)s, 'place', NULL, 'submitted', %(note)s,
        COALESCE((SELECT json_build_object('possible_duplicate_of', public_id) FROM duplicate), '{{}}'::json)
    FROM placed
), announced AS (
    INSERT INTO outbox_messages (job, args, queue, created_at, attempts, next_attempt_at)
    SELECT %(job)s, json_build_object('order_id', id), 'default', %(now)s, 0, %(now)s FROM placed
){remembered}
SELECT id, number, possible_duplicate_of_id, (SELECT public_id FROM duplicate) FROM placed
"""
_REMEMBERED = """, remembered AS (
    INSERT INTO idempotent_requests (user_id, endpoint, key, request_hash, resource_id, created_at)
    SELECT %(claim_user_id)s, %(claim_endpoint)s, %(claim_key)s, %(claim_hash)s, id, %(now)s FROM placed
)"""
_STATEMENTS = {
    claimed: _ONE_STATEMENT.format(open_states=OPEN_STATES_SQL, remembered=_REMEMBERED if claimed else "")
    for claimed in (False, True)
}


def _write_in_one_statement(psycopg_connection, order, event, claim: Claim | None) -> tuple:
    params = {
        **{column: getattr(order, column) for column in _PLAIN_COLUMNS},
        "answers": json.dumps(order.answers, ensure_ascii=False),
        "address": crypto.encrypt(order.address),
        "contact_phone": crypto.encrypt(order.contact_phone),
        "day": f"{clock.to_local(order.created_at):%Y%m%d}",
        "now": order.created_at,
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "note": event.note,
        "job": ANNOUNCE_JOB,
    }
    if claim is not None:
        params.update(
            claim_user_id=claim.user_id,
            claim_endpoint=claim.endpoint,
            claim_key=claim.key,
            claim_hash=claim.request_hash,
        )
    try:
        with psycopg_connection.cursor() as cursor:
            cursor.execute(_STATEMENTS[claim is not None], params)
            return cursor.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == KEY_CONSTRAINT:
            raise KeyTaken from exc
        raise


_PLAIN_COLUMNS = (
    "public_id", "resident_id", "entered_by_id", "entered_by_role", "category_id", "service_kind",
    "urgency_rank", "community_id", "grid_id", "description", "contact_name", "latitude", "longitude",
    "preferred_start", "preferred_end", "due_at",
)  # fmt: skip


# Columns the writing itself decides (on PostgreSQL, in the statement).
_DERIVED = ("id", "number", "possible_duplicate_of_id")


def _write_in_steps(connection, order, event, claim: Claim | None) -> tuple:
    duplicate = connection.execute(
        select(Order.id, Order.public_id)
        .where(
            Order.resident_id == order.resident_id,
            Order.category_id == order.category_id,
            Order.state.in_(sorted(service.OPEN_STATES)),
        )
        .order_by(Order.id.desc())
        .limit(1)
    ).first()
    duplicate_id, duplicate_public_id = duplicate or (None, None)
    written = {c.key: getattr(order, c.key) for c in Order.__table__.columns if c.key not in _DERIVED}
    order_id = connection.execute(
        insert(Order).values(**written, number="", possible_duplicate_of_id=duplicate_id).returning(Order.id)
    ).scalar_one()
    number = _number(f"{clock.to_local(order.created_at):%Y%m%d}", order_id)
    connection.execute(update(Order).where(Order.id == order_id).values(number=number))
    connection.execute(
        insert(OrderEvent).values(
            order_id=order_id,
            at=event.at,
            actor_id=event.actor_id,
            actor_role=event.actor_role,
            action=event.action,
            from_state=None,
            to_state=event.to_state,
            note=event.note,
            data=_place_data(duplicate_public_id),
        )
    )
    outbox.record(job=ANNOUNCE_JOB, args={"order_id": order_id})
    if claim is not None:
        db.session.add(IdempotentRequest(**claim.row(order_id)))
    return order_id, number, duplicate_id, duplicate_public_id
