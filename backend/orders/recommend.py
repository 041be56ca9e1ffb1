"""Dispatch recommendations: the organizations able to take an order, ranked with a score and its reasons.

Able: serves the order's category and community, in the order's street. Ranked by open load against
capacity, residents' ratings, on-time completion and familiarity with the order's grid, times the
organization's dispatch weight (lowered by bad ratings). Each factor is 0..1; the score is 0..100.
"""

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Float, Numeric, and_, bindparam, case, cast, func, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from backend import clock as wall
from backend.catalog.service import catalog
from backend.db import UTCDateTime, db, fetch_all, planned_once
from backend.orders.models import Order, OrganizationRecord, Rating
from backend.organizations.models import Organization, organization_reach
from backend.sla.models import SlaClock

if TYPE_CHECKING:  # service imports this module
    from backend.orders.service import OrderFacts

WEIGHTS = {"load": 0.35, "rating": 0.25, "on_time": 0.25, "grid": 0.15}
# Without history an organization is neither praised nor blamed.
NEUTRAL = 0.6
HISTORY = timedelta(days=180)


@dataclass
class Candidate:
    # The columns scoring and the response need (id, public_id, name, capacity, dispatch_weight, and the
    # aggregates), not a whole Organization: hundreds may serve a category in a community. A named row:
    # SQLAlchemy's, or psycopg's (fetch_all).
    organization: Row | tuple
    score: float
    open_load: int
    capacity: int
    rating: float | None
    on_time_rate: float | None
    grid_orders: int
    reasons: list[str] = field(default_factory=list)


@functools.cache
def _statement(excluding: bool):
    """The organizations able to take an order, scored and ranked, best ``limit`` first, in one statement:
    the candidates from organization_reach, each with its one record row (open load and copies included),
    and how often each served the order's grid; then the score, which is defined here and only here; the
    names and public ids are read for the best ``limit`` alone."""
    record = OrganizationRecord
    reach = organization_reach
    serves = and_(
        reach.c.community_id == bindparam("community_id"), reach.c.category_code == bindparam("category_code")
    )
    familiar = (
        select(Order.organization_id, func.count().label("grid_orders"))
        # Joined to the candidates rather than tested with IN: PostgreSQL would make their ids distinct first.
        .join(reach, and_(reach.c.organization_id == Order.organization_id, serves))
        .where(
            Order.grid_id == bindparam("grid_id"),
            Order.created_at >= bindparam("since", type_=UTCDateTime()),
            # Implied by the join, but written out so PostgreSQL sees ix_orders_grid_recent's condition.
            Order.organization_id.is_not(None),
        )
        .group_by(Order.organization_id)
        # Counted once, whatever PostgreSQL estimates: with organization_reach not yet analysed it once
        # planned this inside a nested loop, run again for each of 400 candidates (4 s instead of 5 ms).
        .cte("familiar")
        .prefix_with("MATERIALIZED")
    )
    grid_orders = func.coalesce(familiar.c.grid_orders, 0)
    capacity = case((record.capacity > 1, record.capacity), else_=1)
    # Each factor 0..1; with no history an organization is neither praised nor blamed (NEUTRAL). Every
    # quotient is of floats: an integer divisor SQLAlchemy casts to NUMERIC, and PostgreSQL's numeric
    # arithmetic over hundreds of candidates cost a fifth of the statement. Only the score is rounded as
    # NUMERIC, once per candidate, so that it rounds half up like the figures people read.
    free = case((record.open_load >= capacity, 0.0), else_=1.0 - _ratio(record.open_load, capacity))
    average = _ratio(record.rating_sum, record.ratings)
    rating = case((record.ratings == 0, NEUTRAL), else_=(average - 1.0) / 4.0)
    timely = case((record.finished == 0, NEUTRAL), else_=_ratio(record.finished_on_time, record.finished))
    familiarity = case((grid_orders >= 5, 1.0), else_=_ratio(grid_orders, 5))
    base = (
        WEIGHTS["load"] * free
        + WEIGHTS["rating"] * rating
        + WEIGHTS["on_time"] * timely
        + WEIGHTS["grid"] * familiarity
    )
    score = func.round(cast(100 * base * record.dispatch_weight, Numeric), 1).label("score")
    ranked = (
        select(
            record.organization_id.label("id"),
            record.capacity,
            record.dispatch_weight,
            record.ratings.label("rated"),
            record.rating_sum,
            record.finished,
            record.finished_on_time,
            record.open_load,
            grid_orders.label("grid_orders"),
            score,
        )
        .select_from(reach)
        .join(record, record.organization_id == reach.c.organization_id)
        .outerjoin(familiar, familiar.c.organization_id == reach.c.organization_id)
        .where(serves)
        .order_by(score.desc(), record.open_load, record.organization_id)
        .limit(bindparam("limit"))
    )
    if excluding:
        ranked = ranked.where(reach.c.organization_id.not_in(bindparam("exclude", expanding=True)))
    ranked = ranked.cte("ranked")
    return (
        select(ranked, Organization.public_id, Organization.name)
        .join(Organization, Organization.id == ranked.c.id)
        .order_by(ranked.c.score.desc(), ranked.c.open_load, ranked.c.id)
    )


def _ratio(numerator, denominator):
    """numerator / denominator as floats (SQLAlchemy casts the divisor to the dividend's type)."""
    return cast(numerator, Float) / type_coerce(denominator, Float)


def recommend(
    order: "Order | OrderFacts", *, exclude: set[int] | frozenset[int] = frozenset(), limit: int = 10
) -> list[Candidate]:
    """Rank the organizations able to take the order, best first."""
    params = {
        "category_code": catalog().by_id[order.category_id].code,
        "community_id": order.community_id,
        "grid_id": order.grid_id,
        "since": wall.now() - HISTORY,
        "limit": limit,
    }
    if exclude:  # automatic dispatch: the list's length changes the SQL, which SQLAlchemy writes each time
        params["exclude"] = sorted(exclude)
        with planned_once() as connection:
            rows = connection.execute(_statement(True), params).all()
    else:  # a secretary's page: the statement as compiled once, on psycopg itself
        rows = fetch_all(_statement(False), params, generic_plan=True, named=True)
    return [_candidate(row) for row in rows]


def _candidate(row) -> Candidate:
    """A ranked organization with the reasons for its score, in words."""
    capacity = max(row.capacity, 1)
    rating = None if not row.rated else row.rating_sum / row.rated
    on_time_rate = None if not row.finished else row.finished_on_time / row.finished
    weight = row.dispatch_weight
    reasons = [f"在办 {row.open_load}/{capacity} 单" + ("，已满负荷" if row.open_load >= capacity else "")]
    reasons.append("暂无评价" if rating is None else f"近半年平均评分 {rating:.1f}/5（{row.rated} 条）")
    reasons.append("暂无办结记录" if on_time_rate is None else f"按时办结率 {on_time_rate:.0%}")
    if row.grid_orders:
        reasons.append(f"近半年在本网格服务 {row.grid_orders} 次")
    if weight < 1:
        reasons.append(f"因差评派单权重降为 {weight:.1f}")
    return Candidate(
        organization=row,
        score=float(row.score),
        open_load=row.open_load,
        capacity=capacity,
        rating=None if rating is None else round(rating, 2),
        on_time_rate=None if on_time_rate is None else round(on_time_rate, 3),
        grid_orders=row.grid_orders,
        reasons=reasons,
    )


def best_candidate(order: Order, *, exclude: set[int]) -> int | None:
    """The best organization's id not in ``exclude``, preferring one with free capacity; None if none."""
    ranked = recommend(order, exclude=exclude, limit=50)
    if not ranked:
        return None
    with_room = [c for c in ranked if c.open_load < c.capacity]
    return (with_room or ranked)[0].organization.id


def refresh_records(*, organization_ids: Iterable[int] | None = None, now: datetime | None = None) -> int:
    """Recount the records of these organizations (of every one that has or had any, when None) over the
    window ending ``now``, in the caller's transaction; return how many rows were written."""
    now = now or wall.now()
    since = now - HISTORY
    ratings = select(Rating.organization_id, func.count(), func.sum(Rating.level)).where(
        Rating.organization_id.is_not(None), Rating.created_at >= since
    )
    finished = select(
        SlaClock.organization_id, func.count(), func.sum(case((SlaClock.on_time.is_(True), 1), else_=0))
    ).where(
        SlaClock.organization_id.is_not(None),
        SlaClock.subject_type == "order",
        SlaClock.name == "complete",
        SlaClock.state == "stopped",
        # Resolved, or called off after running late: an order called off in time was never finished.
        (SlaClock.stop_reason == "met") | SlaClock.overdue_at.is_not(None),
        SlaClock.stopped_at >= since,
    )
    if organization_ids is not None:
        wanted = sorted(set(organization_ids))
        if not wanted:
            return 0
        ratings = ratings.where(Rating.organization_id.in_(wanted))
        finished = finished.where(SlaClock.organization_id.in_(wanted))
    else:
        wanted = list(db.session.scalars(select(OrganizationRecord.organization_id)))
    counted = {
        org: {"ratings": n, "rating_sum": int(total or 0)}
        for org, n, total in db.session.execute(ratings.group_by(Rating.organization_id))
    }
    for org, n, met in db.session.execute(finished.group_by(SlaClock.organization_id)):
        counted.setdefault(org, {}).update(finished=n, finished_on_time=int(met or 0))
    empty = {"ratings": 0, "rating_sum": 0, "finished": 0, "finished_on_time": 0}
    rows = [
        {**empty, **counted.get(org, {}), "organization_id": org, "counted_at": now}
        for org in sorted(set(wanted) | set(counted))
    ]
    if rows:
        db.session.execute(_upsert(), rows)
    return len(rows)


COUNTED = ("ratings", "rating_sum", "finished", "finished_on_time", "counted_at")


def _upsert():
    table = OrganizationRecord.__table__
    dialect = db.session.get_bind().dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    # The counts alone: the open load and the copies are the triggers' (migration 0013).
    changed = {name: statement.excluded[name] for name in COUNTED}
    return statement.on_conflict_do_update(index_elements=["organization_id"], set_=changed)
