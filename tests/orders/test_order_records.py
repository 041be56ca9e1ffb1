"""Organizations' records for recommendations: made with the organization; counted at once when a rating
arrives or an order finishes, and recounted by the sweep as history ages out of the 180-day window; the
open load and the copies of capacity and dispatch weight kept by triggers; and which organizations serve
a category in a community (organization_reach) kept with their categories and communities."""

from datetime import timedelta

import sqlalchemy as sa
import time_machine

from backend import clock
from backend.db import db
from backend.orders.models import LOAD_STATES, Order, OrganizationRecord
from backend.orders.recommend import refresh_records
from backend.organizations.models import Organization, OrganizationCategory, organization_reach
from backend.organizations.service import update_organization


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
    assert _record(world.organization) == (0, 0, 0, 0)  # made with the organization
    order = _resolved(place, act, world)
    assert _record(world.organization) == (0, 0, 1, 1)
    act("resident_a1", order, "confirm", level=4)
    assert _record(world.organization) == (1, 4, 1, 1)
    act("resident_a1", _resolved(place, act, world), "confirm", level=1, comment="太慢了")
    assert _record(world.organization) == (2, 5, 2, 2)


def test_the_sweep_lets_history_age_out_of_the_window(place, act, world):
    act("resident_a1", _resolved(place, act, world), "confirm", level=5)
    assert _record(world.organization) == (1, 5, 1, 1)
    organizations = db.session.scalar(sa.select(sa.func.count()).select_from(Organization))
    assert refresh_records() == organizations and _record(world.organization) == (1, 5, 1, 1)
    with time_machine.travel(clock.now() + timedelta(days=181)):
        assert refresh_records() == organizations
    assert _record(world.organization) == (0, 0, 0, 0)
    # The sweep counts; the open load and the copies are left as they are.
    assert _kept(world.organization) == (world.organization.capacity, 1.0, 0)


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


def _kept(organization) -> tuple:
    db.session.expire_all()
    record = db.session.get(OrganizationRecord, organization.id)
    return record.capacity, record.dispatch_weight, record.open_load


def _open_loads() -> dict[int, int]:
    """Each organization's open load as kept, and as counted from its orders now."""
    db.session.expire_all()
    kept = dict(
        db.session.execute(sa.select(OrganizationRecord.organization_id, OrganizationRecord.open_load)).all()
    )
    counted = dict(
        db.session.execute(
            sa.select(Order.organization_id, sa.func.count())
            .where(Order.organization_id.is_not(None), Order.state.in_(LOAD_STATES))
            .group_by(Order.organization_id)
        ).all()
    )
    assert {org: load for org, load in kept.items() if load} == counted
    return kept


def test_the_open_load_follows_the_orders(place, act, world):
    ours, theirs = world.organization.id, world.other_organization.id
    assert _open_loads()[ours] == 0
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    assert _open_loads()[ours] == 1
    act("org_admin", order, "return", reason="人手不足")
    assert _open_loads()[ours] == 0
    act("secretary_a", order, "dispatch", organization_ids=[world.other_organization.public_id])
    assert (_open_loads()[ours], _open_loads()[theirs]) == (0, 1)
    pooled = act(
        "secretary_a",
        place(),
        "dispatch",
        organization_ids=[world.organization.public_id, world.other_organization.public_id],
        pool=True,
    )
    act("org_admin", pooled, "take")
    assert (_open_loads()[ours], _open_loads()[theirs]) == (1, 1)
    act("org_admin", pooled, "resolve", note="已办结")  # resolved: no longer carried
    assert (_open_loads()[ours], _open_loads()[theirs]) == (0, 1)


def test_the_copies_follow_the_organization(place, act, world):
    update_organization(org=world.organization, capacity=3)
    assert _kept(world.organization) == (3, 1.0, 0)
    act("resident_a1", _resolved(place, act, world), "confirm", level=1, comment="没人来")
    db.session.refresh(world.organization)
    lowered = world.organization.dispatch_weight
    assert lowered < 1.0 and _kept(world.organization) == (3, lowered, 0)


def _reach() -> set[tuple[int, str, int]]:
    db.session.expire_all()
    return set(db.session.execute(sa.select(organization_reach)).all())


def _product() -> set[tuple[int, str, int]]:
    """What organization_reach should hold: every organization's communities times its categories."""
    organizations = db.session.scalars(sa.select(Organization)).all()
    return {(c.id, code, o.id) for o in organizations for c in o.communities for code in o.category_codes}


def test_the_reach_follows_categories_and_communities(world):
    org = world.organization
    assert _reach() == _product() and (world.community_a.id, "companionship", org.id) in _reach()
    update_organization(org=org, categories=["legal_advice"])
    assert _reach() == _product()
    assert {(c, code) for c, code, o in _reach() if o == org.id} == {
        (c.id, "legal_advice") for c in org.communities
    }
    org.communities.append(world.community_b)
    org.categories.append(OrganizationCategory(category_code="home_repair"))
    db.session.commit()
    assert (world.community_b.id, "home_repair", org.id) in _reach() and _reach() == _product()
    org.communities.remove(world.community_b)
    db.session.commit()
    assert all(c != world.community_b.id for c, _, o in _reach() if o == org.id) and _reach() == _product()


def test_an_order_called_off_is_not_a_finished_one(place, act, world):
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    act("org_admin", order, "take")
    act("secretary_a", order, "cancel", reason="居民已自行解决")
    # Its completion clock stopped, but nothing was completed, on time or late.
    assert _record(world.organization) == (0, 0, 0, 0)
    assert refresh_records() and _record(world.organization) == (0, 0, 0, 0)
