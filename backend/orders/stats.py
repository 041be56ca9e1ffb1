"""Ratings and rates per organization or community, as the street reads them.

- 满意率 satisfaction: ratings of 较满意 (3) or better ÷ ratings.
- 响应率 response: acceptance clocks stopped in time (taken before the 签收 deadline) ÷ acceptance clocks
  that finished (taken) or ran out; an order called off before anyone took it in time counts in neither.
- 解决率 resolution: orders resolved or closed ÷ orders taken.
"""

from datetime import datetime

from sqlalchemy import case, func, select

from backend.community.models import Community
from backend.db import db
from backend.orders.models import Order, Rating
from backend.organizations.models import Organization
from backend.sla.models import SlaClock

SATISFIED = 3


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else round(part / whole, 4)


def rating_stats(
    *, group_by: str, community_ids: list[int], since: datetime | None = None, until: datetime | None = None
) -> list[dict]:
    """Satisfaction, response and resolution rates per organization or community within the communities."""
    by_org = group_by == "organization"

    def window(column):
        return [*([column >= since] if since else []), *([column < until] if until else [])]

    rating_key = Rating.organization_id if by_org else Rating.community_id
    ratings = db.session.execute(
        select(rating_key, Rating.level, func.count())
        .where(Rating.community_id.in_(community_ids), rating_key.is_not(None), *window(Rating.created_at))
        .group_by(rating_key, Rating.level)
    ).all()
    clock_key = SlaClock.organization_id if by_org else SlaClock.community_id
    response = db.session.execute(
        select(clock_key, func.sum(case((SlaClock.on_time.is_(True), 1), else_=0)), func.count())
        .where(
            SlaClock.subject_type == "order",
            SlaClock.name == "accept",
            SlaClock.community_id.in_(community_ids),
            clock_key.is_not(None),
            # Taken, or ran out: a clock stopped because the order was called off measured no response.
            (SlaClock.stop_reason == "met") | SlaClock.overdue_at.is_not(None),
            *window(SlaClock.started_at),
        )
        .group_by(clock_key)
    ).all()
    order_key = Order.organization_id if by_org else Order.community_id
    resolved = db.session.execute(
        select(
            order_key,
            func.count(),
            func.sum(case((Order.state.in_(["resolved", "closed"]), 1), else_=0)),
        )
        .where(
            Order.community_id.in_(community_ids),
            Order.taken_at.is_not(None),
            order_key.is_not(None),
            *window(Order.taken_at),
        )
        .group_by(order_key)
    ).all()
    stats: dict[int, dict] = {}

    def entry(key: int) -> dict:
        return stats.setdefault(
            key, {"levels": {}, "rated": 0, "satisfied": 0, "orders": 0, "resolved": 0, "met": 0, "timed": 0}
        )

    for key, level, count in ratings:
        e = entry(key)
        e["levels"][str(level)] = count
        e["rated"] += count
        e["satisfied"] += count if level >= SATISFIED else 0
    for key, met, timed in response:
        e = entry(key)
        e["met"], e["timed"] = int(met or 0), int(timed)
    for key, taken, done in resolved:
        e = entry(key)
        e["orders"], e["resolved"] = int(taken), int(done or 0)
    model = Organization if by_org else Community
    names = {
        r.id: r
        for r in db.session.execute(
            select(model.id, model.public_id, model.name).where(model.id.in_(list(stats)))
        )
    }
    items = [
        {
            "id": names[key].public_id,
            "name": names[key].name,
            "orders": e["orders"],
            "rated": e["rated"],
            "satisfaction_rate": _rate(e["satisfied"], e["rated"]),
            "response_rate": _rate(e["met"], e["timed"]),
            "resolution_rate": _rate(e["resolved"], e["orders"]),
            "levels": e["levels"],
        }
        for key, e in stats.items()
    ]
    items.sort(key=lambda i: i["name"])
    return items
