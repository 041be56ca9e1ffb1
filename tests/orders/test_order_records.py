"""Organizations' records for recommendations: counted at once when a rating arrives or an order finishes,
and recounted by the sweep as history ages out of the 180-day window."""

from datetime import timedelta

import time_machine

from backend import clock
from backend.db import db
from backend.orders.models import OrganizationRecord
from backend.orders.recommend import refresh_records


def _record(organization) -> tuple:
    db.session.expire_all()
    record = db.session.get(OrganizationRecord, organization.id)
    if record is None:
        return None
    return record.ratings, record.rating_sum, record.finished, record.finished_on_time


def _resolved(place, act, world) -> dict:
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    act("org_admin", order, "take")
    return act("org_admin", order, "resolve", note="已办结")


def test_a_finished_order_and_its_rating_count_at_once(place, act, world):
    assert _record(world.organization) is None
    order = _resolved(place, act, world)
    assert _record(world.organization) == (0, 0, 1, 1)
    act("resident_a1", order, "confirm", level=4)
    assert _record(world.organization) == (1, 4, 1, 1)
    act("resident_a1", _resolved(place, act, world), "confirm", level=1, comment="太慢了")
    assert _record(world.organization) == (2, 5, 2, 2)


def test_the_sweep_lets_history_age_out_of_the_window(place, act, world):
    act("resident_a1", _resolved(place, act, world), "confirm", level=5)
    assert _record(world.organization) == (1, 5, 1, 1)
    assert refresh_records() == 1 and _record(world.organization) == (1, 5, 1, 1)
    with time_machine.travel(clock.now() + timedelta(days=181)):
        assert refresh_records() == 1
    assert _record(world.organization) == (0, 0, 0, 0)


def test_recommendations_read_the_records(client, auth, place, act, world):
    act("resident_a1", _resolved(place, act, world), "confirm", level=3)
    order = place()
    ranked = client.get(
        f"/api/v1/orders/{order['id']}/recommendations", headers=auth("secretary_a")
    ).get_json()
    ours = next(c for c in ranked["items"] if c["organization_id"] == world.organization.public_id)
    assert ours["rating"] == 3.0 and ours["on_time_rate"] == 1.0
    assert "近半年平均评分 3.0/5（1 条）" in ours["reasons"] and "按时办结率 100%" in ours["reasons"]
    # Free (1.0), rating (3-1)/4, on time 1.0, one order of five in this grid, full weight:
    assert ours["score"] == round(100 * (0.35 * 1.0 + 0.25 * 0.5 + 0.25 * 1.0 + 0.15 * 0.2), 1)
