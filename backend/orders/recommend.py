"""Dispatch recommendations: the organizations able to take an order, ranked with a score and its reasons.

Able: serves the order's category and community, in the order's street. Ranked by open load against
capacity, residents' ratings, on-time completion and familiarity with the order's grid, times the
organization's dispatch weight (lowered by bad ratings). Each factor is 0..1; the score is 0..100.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, case, func, select, text
from sqlalchemy.engine import Row

from backend import clock as wall
from backend.db import db
from backend.orders.models import LOAD_STATES_SQL, Order, Rating
from backend.orders.states import HELD_STATES
from backend.organizations.models import Organization, OrganizationCategory, organization_communities
from backend.sla.models import SlaClock

WEIGHTS = {"load": 0.35, "rating": 0.25, "on_time": 0.25, "grid": 0.15}
# Without history an organization is neither praised nor blamed.
NEUTRAL = 0.6
HISTORY = timedelta(days=180)
LOAD_STATES = [*sorted(HELD_STATES - {"resolved"}), "dispatched"]


@dataclass
class Candidate:
    # The columns scoring and the response need (id, public_id, name, capacity, dispatch_weight), not a
    # whole Organization: hundreds may serve a category in a community.
    organization: Row
    score: float
    open_load: int
    capacity: int
    rating: float | None
    on_time_rate: float | None
    grid_orders: int
    reasons: list[str] = field(default_factory=list)


def _candidates(order: Order) -> list[Row]:
    return list(
        db.session.execute(
            select(
                Organization.id,
                Organization.public_id,
                Organization.name,
                Organization.capacity,
                Organization.dispatch_weight,
            )
            .join(OrganizationCategory, OrganizationCategory.organization_id == Organization.id)
            .join(organization_communities, organization_communities.c.organization_id == Organization.id)
            .where(
                OrganizationCategory.category_code == order.category.code,
                organization_communities.c.community_id == order.community_id,
            )
            .order_by(Organization.id)
        )
    )


def _grouped(query, ids: list[int]) -> dict[int, tuple]:
    wanted = set(ids)  # hundreds of candidates: a list here made this quadratic
    return {row[0]: tuple(row[1:]) for row in db.session.execute(query) if row[0] in wanted} if ids else {}


def recommend(
    order: Order, *, exclude: set[int] | frozenset[int] = frozenset(), limit: int = 10
) -> list[Candidate]:
    """Rank the organizations able to take the order, best first."""
    orgs = [o for o in _candidates(order) if o.id not in exclude]
    ids = [o.id for o in orgs]
    if not ids:
        return []
    since = wall.now() - HISTORY
    load = _grouped(
        select(Order.organization_id, func.count())
        # LOAD_STATES written out with its constants, as the partial index ix_orders_organization_open is:
        # PostgreSQL uses a partial index only for a condition it can see implies the index's.
        .where(Order.organization_id.in_(ids), text(LOAD_STATES_SQL))
        .group_by(Order.organization_id),
        ids,
    )
    ratings = _grouped(
        select(Rating.organization_id, func.avg(Rating.level), func.count())
        .where(Rating.organization_id.in_(ids), Rating.created_at >= since)
        .group_by(Rating.organization_id),
        ids,
    )
    on_time = _grouped(
        select(
            SlaClock.organization_id, func.sum(case((SlaClock.on_time.is_(True), 1), else_=0)), func.count()
        )
        .where(
            SlaClock.organization_id.in_(ids),
            SlaClock.subject_type == "order",
            SlaClock.name == "complete",
            SlaClock.state == "stopped",
            SlaClock.stopped_at >= since,
        )
        .group_by(SlaClock.organization_id),
        ids,
    )
    familiar = _grouped(
        select(Order.organization_id, func.count())
        .where(
            and_(Order.organization_id.in_(ids), Order.grid_id == order.grid_id, Order.created_at >= since)
        )
        .group_by(Order.organization_id),
        ids,
    )
    ranked = [_score(o, load, ratings, on_time, familiar) for o in orgs]
    ranked.sort(key=lambda c: (-c.score, c.open_load, c.organization.id))
    return ranked[:limit]


def _score(org: Row, load, ratings, on_time, familiar) -> Candidate:
    open_load = int(load.get(org.id, (0,))[0])
    capacity = max(org.capacity, 1)
    free = max(0.0, 1 - open_load / capacity)
    avg, rated = ratings.get(org.id, (None, 0))
    rating = None if not rated else float(avg)
    rating_factor = NEUTRAL if rating is None else (rating - 1) / 4
    met, finished = on_time.get(org.id, (0, 0))
    on_time_rate = None if not finished else int(met) / int(finished)
    on_time_factor = NEUTRAL if on_time_rate is None else on_time_rate
    grid_orders = int(familiar.get(org.id, (0,))[0])
    grid_factor = min(1.0, grid_orders / 5)
    base = (
        WEIGHTS["load"] * free
        + WEIGHTS["rating"] * rating_factor
        + WEIGHTS["on_time"] * on_time_factor
        + WEIGHTS["grid"] * grid_factor
    )
    weight = org.dispatch_weight
    reasons = [f"在办 {open_load}/{capacity} 单" + ("，已满负荷" if free == 0 else "")]
    reasons.append("暂无评价" if rating is None else f"近半年平均评分 {rating:.1f}/5（{rated} 条）")
    reasons.append("暂无办结记录" if on_time_rate is None else f"按时办结率 {on_time_rate:.0%}")
    if grid_orders:
        reasons.append(f"近半年在本网格服务 {grid_orders} 次")
    if weight < 1:
        reasons.append(f"因差评派单权重降为 {weight:.1f}")
    return Candidate(
        organization=org,
        score=round(100 * base * weight, 1),
        open_load=open_load,
        capacity=capacity,
        rating=None if rating is None else round(rating, 2),
        on_time_rate=None if on_time_rate is None else round(on_time_rate, 3),
        grid_orders=grid_orders,
        reasons=reasons,
    )


def best_candidate(order: Order, *, exclude: set[int]) -> int | None:
    """The best organization's id not in ``exclude``, preferring one with free capacity; None if none."""
    ranked = recommend(order, exclude=exclude, limit=50)
    if not ranked:
        return None
    with_room = [c for c in ranked if c.open_load < c.capacity]
    return (with_room or ranked)[0].organization.id
