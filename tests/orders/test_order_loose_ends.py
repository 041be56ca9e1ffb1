"""What a step leaves behind it: a pending extension request goes with the work, a returned order's cards go
to the secretary, a closed 督办 takes the order's flag with it, a repeated return keeps one record, a rated
order offers no second rating, and a reopened urgent order is redispatched like any urgent dispatch."""

from datetime import timedelta

from sqlalchemy import select

from backend.db import db
from backend.notify.models import Notification
from backend.orders.models import Order
from backend.organizations.models import OrganizationCategory
from backend.sla import clocks
from backend.sla.models import SlaClock
from backend.supervision.models import Supervision


def _dispatched(place, act, world, **changes) -> dict:
    return act("secretary_a", place(**changes), "dispatch", organization_ids=[world.organization.public_id])


def _taken(place, act, world) -> dict:
    return act("org_admin", _dispatched(place, act, world), "take")


def _board(client, auth) -> list[str]:
    items = client.get("/api/v1/orders/board", headers=auth("secretary_a")).get_json()["items"]
    return [o["id"] for o in items]


def _row(order: dict) -> Order:
    db.session.expire_all()
    return db.session.scalar(select(Order).where(Order.public_id == order["id"]))


def _running(order: dict, name: str) -> SlaClock:
    return db.session.scalars(
        select(SlaClock).where(
            SlaClock.subject_type == "order",
            SlaClock.subject_id == _row(order).id,
            SlaClock.name == name,
            SlaClock.state != "stopped",
        )
    ).one()


def test_a_pending_extension_request_goes_with_the_resolved_work(client, auth, place, act, world):
    order = _taken(place, act, world)
    asked = act("org_admin", order, "request-extension", amount=2, unit="working_days", reason="等配件")
    assert asked["extension_request"]["requested_at"].endswith("+08:00")
    assert order["id"] in _board(client, auth)
    order = act("org_admin", order, "resolve", note="已提前办完")
    assert order["extension_request"] is None and not order["extension_requested"]
    order = act("resident_a1", order, "confirm", level=5)
    assert order["id"] not in _board(client, auth)


def test_a_pending_extension_request_goes_with_a_cancelled_order(client, auth, place, act, world):
    order = _taken(place, act, world)
    act("org_admin", order, "request-extension", amount=2, unit="working_days", reason="等配件")
    order = act("secretary_a", order, "cancel", reason="居民电话告知不需要了")
    assert order["extension_request"] is None
    assert order["id"] not in _board(client, auth)


def test_a_returned_orders_cards_go_to_the_secretary_not_the_organization_that_returned_it(place, act, world):
    order = _dispatched(place, act, world)
    act("org_admin", order, "return", reason="人手不足")
    accept = _running(order, "accept")
    assert accept.organization_id is None
    clocks.raise_warning(clock_id=accept.id, now=accept.warn_at + timedelta(seconds=1))
    clocks.raise_overdue(clock_id=accept.id, now=accept.due_at + timedelta(seconds=1))
    db.session.commit()
    warned = set(db.session.scalars(select(Notification.user_id).where(Notification.event == "sla_warning")))
    assert world.users["secretary_a"].id in warned
    assert world.users["org_admin"].id not in warned
    overdue = set(
        db.session.scalars(select(Notification.user_id).where(Notification.event == "order_overdue"))
    )
    assert world.users["org_admin"].id not in overdue
    assert db.session.scalars(select(Supervision.organization_id)).all() == [None]


def test_closing_the_last_supervision_clears_the_orders_flag(client, auth, place, act, world):
    order = act("org_admin", _taken(place, act, world), "resolve", note="已上门陪伴")
    order = act("resident_a1", order, "confirm", level=1, comment="没人来")
    assert order["is_supervised"]
    record = db.session.scalars(select(Supervision)).one()
    closed = client.post(
        f"/api/v1/supervisions/{record.public_id}/close",
        json={"resolution": "已约谈组织负责人并重新上门"},
        headers=auth("street_admin"),
    )
    assert closed.status_code == 200, closed.get_json()
    shown = client.get(f"/api/v1/orders/{order['id']}", headers=auth("secretary_a")).get_json()
    assert not shown["is_supervised"]
    supervised = client.get(
        "/api/v1/orders/board?supervised=true&needs_action=false", headers=auth("secretary_a")
    ).get_json()["items"]
    assert order["id"] not in [o["id"] for o in supervised]


def test_repeated_returns_keep_one_open_supervision(place, act, world):
    order = _dispatched(place, act, world)
    for reason in ("人手不足", "仍然人手不足", "还是人手不足"):
        act("org_admin", order, "return", reason=reason)
        order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
    reasons = db.session.scalars(select(Supervision.reason).where(Supervision.status == "open")).all()
    assert reasons == ["repeated_return"]


def test_an_order_rated_on_confirming_offers_no_second_rating(place, act, world):
    order = act("org_admin", _taken(place, act, world), "resolve", note="已上门陪伴")
    order = act("resident_a1", order, "confirm", level=5)
    assert "rate" not in order["allowed_actions"] and "reopen" in order["allowed_actions"]
    refused = act("resident_a1", order, "rate", expect=409, level=3)
    assert refused["code"] == "already_rated" and refused["details"]["allowed_actions"] == ["reopen"]


def test_the_volunteers_on_a_cancelled_order_are_told(place, act, world):
    order = _taken(place, act, world)
    act("org_admin", order, "assign", volunteer_ids=[world.volunteer_entry.public_id])
    act("secretary_a", order, "cancel", reason="居民电话告知不需要了")
    told = db.session.scalars(
        select(Notification)
        .where(Notification.user_id == world.users["volunteer"].id)
        .order_by(Notification.id.desc())
        .limit(1)
    ).one()
    assert told.title == "工单已取消"


def test_a_reopened_urgent_order_is_redispatched_when_nobody_takes_it(place, act, world):
    for org in (world.organization, world.other_organization):
        org.categories.append(OrganizationCategory(category_code="emergency_help"))
    db.session.commit()
    order = place(category="emergency_help", answers={"situation": "fall"}, description="老人在家中跌倒")
    order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
    order = act("org_admin", order, "take")
    order = act("org_admin", order, "resolve", note="已送医")
    order = act("resident_a1", order, "reopen", reason="还没处理好")
    assert order["state"] == "dispatched"
    assert _running(order, "take").state == "running"


def test_a_missed_acceptance_stays_with_the_organization_that_returned_the_order(
    client, auth, place, act, world
):
    """Returning the order hands its later cards to the secretary; it does not erase a 签收 deadline the
    organization had already let pass from its 响应率."""
    order = _dispatched(place, act, world)
    accept = _running(order, "accept")
    clocks.raise_overdue(clock_id=accept.id, now=accept.due_at + timedelta(seconds=1))
    db.session.commit()
    act("org_admin", order, "return", reason="人手不足")
    act("secretary_a", order, "cancel", reason="居民自己解决了")
    items = client.get("/api/v1/orders/stats", headers=auth("street_admin")).get_json()["items"]
    ours = next((i for i in items if i["id"] == world.organization.public_id), None)
    assert ours is not None and ours["response_rate"] == 0.0, ours
