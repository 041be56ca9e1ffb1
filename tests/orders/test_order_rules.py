"""Every illegal action, scope violation and bad input of the order API, with its exact status."""

import base64
import io
import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.notify.models import Notification
from backend.orders.models import Order, OrderEvent, Rating
from backend.organizations.models import Organization
from backend.sla.models import SlaClock
from backend.supervision.models import Supervision
from tests.sla.calendar_data import local


def dispatched(place, act, world, **changes) -> dict:
    order = place(**changes)
    return act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])


def taken(place, act, world) -> dict:
    return act("org_admin", dispatched(place, act, world), "take")


def resolved(place, act, world) -> dict:
    order = taken(place, act, world)
    return act("org_admin", order, "resolve", note="已办结")


def offered(client, auth, person: str, order: dict) -> list[str]:
    """The actions the order's page offers the person now."""
    return client.get(f"/api/v1/orders/{order['id']}", headers=auth(person)).get_json()["allowed_actions"]


def refused_and_not_offered(client, auth, act, person: str, order: dict, action: str, **body) -> dict:
    """Assert the action is neither offered on the order's page nor taken (409, which does not offer it
    either); return the 409's body."""
    assert action not in offered(client, auth, person, order)
    refused = act(person, order, action.replace("_", "-"), expect=409, **body)
    assert action not in refused["details"]["allowed_actions"]
    return refused


# Illegal actions: 409 with the state and what this caller may do instead; an action is offered only when
# it would be taken.


def test_an_illegal_action_says_the_state_and_the_allowed_actions(place, act, world):
    order = place()
    refused = act("resident_a1", order, "confirm", expect=409, level=5)
    assert refused["code"] == "illegal_action"
    assert refused["details"] == {
        "state": "submitted",
        "state_label": "已点单",
        "allowed_actions": ["cancel"],
    }


@pytest.mark.parametrize(
    ("person", "action", "body"),
    [
        ("secretary_a", "accept", {}),
        ("secretary_a", "dispatch", {"organization_ids": ["OTHER_ORG"]}),
        ("resident_a1", "cancel", {"reason": "不需要了"}),
        ("org_admin", "return", {"reason": "人手不足"}),
        ("org_admin", "take", {}),
    ],
)
def test_actions_that_no_longer_fit_a_taken_order(place, act, world, person, action, body):
    order = taken(place, act, world)
    if body.get("organization_ids") == ["OTHER_ORG"]:
        body = {"organization_ids": [world.other_organization.public_id]}
    refused = act(person, order, action, expect=409, **body)
    assert refused["details"]["state"] == "taken"


def test_a_resolved_order_cannot_be_rated_twice_or_reopened_after_seven_days(client, auth, place, act, world):
    order = resolved(place, act, world)
    assert act("resident_a1", order, "confirm", level=4)["allowed_actions"] == ["reopen"]
    rated = refused_and_not_offered(client, auth, act, "resident_a1", order, "rate", level=3)
    assert rated["code"] == "already_rated"
    # Resolved seven days and a minute ago: nothing left to do with it.
    row = db.session.scalar(select(Order).where(Order.public_id == order["id"]))
    row.resolved_at = clock.now() - timedelta(days=7, minutes=1)
    db.session.commit()
    refused = refused_and_not_offered(client, auth, act, "resident_a1", order, "reopen", reason="还是不行")
    assert refused["message"] == "回单 7 天后不能再申请重办"
    assert offered(client, auth, "resident_a1", order) == []


def test_an_order_reopened_after_its_rating_is_confirmed_and_rated_again(place, act, world):
    order = resolved(place, act, world)
    assert "reopen" in act("resident_a1", order, "confirm", level=2, comment="还在漏水")["allowed_actions"]
    order = act("resident_a1", order, "reopen", reason="水管还是漏")
    order = act("org_admin", order, "take")
    order = act("org_admin", order, "resolve", note="更换了水管")
    order = act("resident_a1", order, "confirm", level=5, comment="修好了")
    assert order["state"] == "closed" and order["rating"]["level"] == 5
    assert db.session.query(Rating).count() == 1  # one rating per order: the resident's last word
    assert act("resident_a1", order, "rate", expect=409, level=3)["code"] == "already_rated"


def test_urgent_orders_cannot_be_returned_or_extended(client, auth, place, act, world):
    world.organization.categories[0].category_code = "emergency_help"
    db.session.commit()
    order = place(category="emergency_help", answers={"situation": "fall"}, description="老人在家中跌倒")
    order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
    refused = refused_and_not_offered(client, auth, act, "org_admin", order, "return", reason="人手不足")
    assert refused["message"] == "紧急性服务不允许退单"
    order = act("org_admin", order, "take")
    refused = refused_and_not_offered(
        client, auth, act, "org_admin", order, "request_extension", amount=1, unit="hours", reason="太远"
    )
    assert refused["message"] == "紧急性服务不允许延期"


def test_an_order_accepted_as_urgent_runs_the_urgent_rules(place, act, world):
    start = clock.now()
    with time_machine.travel(start, tick=False):
        order = act("secretary_a", place(), "accept", service_kind="urgent")  # placed as targeted
    assert order["service_kind"] == "urgent"
    # Half an hour to take it, around the clock, as any urgent order.
    assert order["due_at"] == clock.to_local(start + timedelta(minutes=30)).isoformat()
    assert _running_timers(order) == {"accept", "dispatch"}  # dispatched by Sandan if nobody does
    order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
    assert "不允许退单" in act("org_admin", order, "return", expect=409, reason="人手不足")["message"]


def test_an_urgent_order_accepted_as_daily_runs_the_daily_rules(place, act, world):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False):  # Monday
        order = place(category="emergency_help", answers={"situation": "fall"}, description="老人在家中跌倒")
        order = act("secretary_a", order, "accept", service_kind="daily")
    # One working day to take it, and no automatic dispatch.
    assert order["due_at"] == local(2026, 11, 24, 10).isoformat()
    assert _running_timers(order) == {"accept"}


def _running_timers(order: dict) -> set[str]:
    order_id = db.session.scalar(select(Order.id).where(Order.public_id == order["id"]))
    return set(
        db.session.scalars(
            select(SlaClock.name).where(
                SlaClock.subject_type == "order", SlaClock.subject_id == order_id, SlaClock.state == "running"
            )
        )
    )


def test_return_only_within_two_working_days_of_dispatch(client, auth, place, act, world):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:  # Monday
        order = dispatched(place, act, world)
        late = dispatched(place, act, world)
        traveller.move_to(local(2026, 11, 25, 10))
        assert "return" in offered(client, auth, "org_admin", order)
        assert act("org_admin", order, "return", reason="人手不足")["state"] == "returned"
        traveller.move_to(local(2026, 11, 25, 10, 1))
        refused = refused_and_not_offered(client, auth, act, "org_admin", late, "return", reason="人手不足")
    assert refused["message"] == "派单后2个工作日内才能退单"


def board_ids(client, auth) -> list[str]:
    return [
        o["id"] for o in client.get("/api/v1/orders/board", headers=auth("secretary_a")).get_json()["items"]
    ]


def test_one_extension_only_and_within_the_policy(client, auth, place, act, world):
    order = taken(place, act, world)
    too_long = act(
        "org_admin", order, "request-extension", expect=422, amount=4, unit="working_days", reason="等配件"
    )
    assert "amount" in too_long["details"]
    half = act(
        "org_admin", order, "request-extension", expect=422, amount=1.5, unit="working_days", reason="等配件"
    )
    assert half["details"] == {"amount": ["工作日须为整数"]}
    assert "request_extension" in offered(client, auth, "org_admin", order)
    order = act("org_admin", order, "request-extension", amount=2, unit="working_days", reason="等配件")
    assert order["id"] in board_ids(client, auth)  # waiting on the secretary
    again = {"amount": 1, "unit": "working_days", "reason": "再等"}
    pending = refused_and_not_offered(client, auth, act, "org_admin", order, "request_extension", **again)
    assert pending["message"] == "每张工单只能延期一次"
    before = order["due_at"]
    order = act("secretary_a", order, "approve-extension")
    assert order["due_at"] > before and order["extension_granted"]
    assert order["id"] not in board_ids(client, auth)  # decided: off the board again
    refused = refused_and_not_offered(client, auth, act, "org_admin", order, "request_extension", **again)
    assert refused["message"] == "每张工单只能延期一次"


def _completion_clock(order: dict) -> SlaClock:
    order_id = db.session.scalar(select(Order.id).where(Order.public_id == order["id"]))
    return db.session.scalars(
        select(SlaClock).where(SlaClock.subject_id == order_id, SlaClock.name == "complete")
    ).one()


def test_a_decision_on_an_extension_is_offered_only_while_one_is_asked(client, auth, place, act, world):
    order = taken(place, act, world)
    assert order["extension_request"] is None
    for action in ("approve_extension", "deny_extension"):
        refused = refused_and_not_offered(client, auth, act, "secretary_a", order, action)
        assert refused["message"] == "没有待审批的延期申请"
    act("org_admin", order, "request-extension", amount=2, unit="working_days", reason="等配件")
    assert offered(client, auth, "secretary_a", order) == ["approve_extension", "deny_extension", "cancel"]
    order = act("secretary_a", order, "deny-extension", note="请按时完成")
    assert order["extension_request"] is None and not order["extension_granted"]
    assert order["allowed_actions"] == ["cancel"]


def test_no_extension_is_asked_for_once_the_deadline_has_passed(client, auth, place, act, world):
    order = taken(place, act, world)
    completion = _completion_clock(order)
    completion.due_at = clock.now() - timedelta(minutes=1)  # its red card not raised yet
    db.session.commit()
    body = {"amount": 1, "unit": "working_days", "reason": "等配件"}
    refused = refused_and_not_offered(client, auth, act, "org_admin", order, "request_extension", **body)
    assert refused["message"] == "已超时，不能再申请延期"


def test_the_secretary_reads_how_long_an_extension_is_asked_for(client, auth, place, act, world):
    order = taken(place, act, world)
    act("org_admin", order, "request-extension", amount=3, unit="working_days", reason="配件需订货")
    seen = client.get(f"/api/v1/orders/{order['id']}", headers=auth("secretary_a")).get_json()
    asked = seen["extension_request"]
    assert (asked["amount"], asked["unit"], asked["label"]) == ("3.0", "working_days", "3个工作日")
    assert asked["reason"] == "配件需订货"


def test_an_overdue_order_is_not_extended_and_the_409_says_its_state(client, auth, place, act, world):
    order = taken(place, act, world)
    order = act("org_admin", order, "request-extension", amount=2, unit="working_days", reason="等配件")
    completion = _completion_clock(order)
    completion.overdue_at = clock.now()  # the red card came before the secretary decided
    db.session.commit()
    refused = act("secretary_a", order, "approve-extension", expect=409)
    assert refused["code"] == "illegal_action" and "超时" in refused["message"]
    assert refused["details"]["state"] == "taken"
    # Approving is refused now, so the secretary is no longer offered it: deciding is denying.
    assert refused["details"]["allowed_actions"] == ["deny_extension", "cancel"]
    assert offered(client, auth, "secretary_a", order) == ["deny_extension", "cancel"]
    act("secretary_a", order, "deny-extension", note="已超时")
    body = {"amount": 1, "unit": "working_days", "reason": "再等"}
    again = refused_and_not_offered(client, auth, act, "org_admin", order, "request_extension", **body)
    assert again["code"] == "illegal_action" and again["details"]["state"] == "taken"


def _running_clock(order: dict) -> tuple:
    """(deadline, warning) of the order's running clock that escalates, as the API writes times."""
    order_id = db.session.scalar(select(Order.id).where(Order.public_id == order["id"]))
    running = db.session.scalars(
        select(SlaClock)
        .where(SlaClock.subject_type == "order", SlaClock.subject_id == order_id)
        .where(SlaClock.state == "running", SlaClock.escalates.is_(True))
        .order_by(SlaClock.id.desc())
    ).first()
    return tuple(clock.to_local(at).isoformat() for at in (running.due_at, running.warn_at))


def test_the_order_shows_when_its_deadline_comes_and_when_it_is_near(client, auth, place, act, world):
    def board_entry(order: dict) -> tuple:
        items = client.get("/api/v1/orders/board", headers=auth("secretary_a")).get_json()["items"]
        entry = next(o for o in items if o["id"] == order["id"])
        return entry["due_at"], entry["warn_at"]

    order = place()
    assert (order["due_at"], order["warn_at"]) == (None, None)  # no clock before acceptance
    order = act("secretary_a", order, "accept")
    assert (order["due_at"], order["warn_at"]) == _running_clock(order) == board_entry(order)
    assert order["warn_at"] < order["due_at"]
    order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
    order = act("org_admin", order, "take")
    completion = _running_clock(order)
    assert (order["due_at"], order["warn_at"]) == completion
    order = act("org_admin", order, "request-extension", amount=2, unit="working_days", reason="等配件")
    order = act("secretary_a", order, "approve-extension")
    assert (order["due_at"], order["warn_at"]) == _running_clock(order)
    assert order["warn_at"] > completion[1]
    order = act("org_admin", order, "resolve", note="已办结")
    assert (order["due_at"], order["warn_at"]) == (None, None)
    seen = client.get(f"/api/v1/orders/{order['id']}", headers=auth("resident_a1")).get_json()
    assert (seen["due_at"], seen["warn_at"]) == (None, None)


def test_two_returns_raise_a_supervision(place, act, world):
    order = dispatched(place, act, world)
    act("org_admin", order, "return", reason="人手不足")
    order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
    act("org_admin", order, "return", reason="仍然人手不足")
    record = db.session.query(Supervision).one()
    assert record.reason == "repeated_return"


def test_a_bad_rating_opens_a_supervision_and_lowers_the_dispatch_weight(place, act, world):
    order = resolved(place, act, world)
    order = act("resident_a1", order, "confirm", level=1, comment="没有解决问题")
    assert order["is_supervised"] and order["rating"]["level_label"] == "不满意"
    assert db.session.query(Supervision).one().reason == "bad_rating"
    raised = order["timeline"][-2]  # Sandan's, as the rating came, before the confirmation's
    assert (raised["action"], raised["action_label"], raised["by_system"]) == ("supervise", "督办", True)
    assert db.session.get(Organization, world.organization.id).dispatch_weight == pytest.approx(0.9)


def test_a_second_reopen_raises_a_supervision(place, act, world):
    order = resolved(place, act, world)
    order = act("resident_a1", order, "reopen", reason="水管还是漏")
    assert order["state"] == "dispatched" and order["organization"]["id"] == world.organization.public_id
    order = act("org_admin", order, "take")
    order = act("org_admin", order, "resolve", note="再次维修")
    order = act("resident_a1", order, "reopen", reason="依旧漏水")
    assert order["is_supervised"]
    assert [s.reason for s in db.session.query(Supervision)] == ["second_reopen"]


# Scope: 404 for orders one may not see (their existence is not disclosed), 403 for roles one does not hold.


def test_people_outside_an_order_cannot_see_or_touch_it(client, auth, place, act, world):
    order = dispatched(place, act, world)
    url = f"/api/v1/orders/{order['id']}"
    for outsider in (
        "resident_b1",
        "secretary_b",
        "other_org_admin",
        "volunteer",
        "other_street_admin",
        "newcomer",
    ):
        assert client.get(url, headers=auth(outsider)).status_code == 404, outsider
    assert client.post(url + "/take", json={}, headers=auth("other_org_admin")).status_code == 404
    assert (
        client.post(url + "/cancel", json={"reason": "想取消"}, headers=auth("resident_b1")).status_code
        == 404
    )
    for insider in ("resident_a1", "secretary_a", "street_admin", "org_admin", "grid_worker_a1"):
        assert client.get(url, headers=auth(insider)).status_code == 200, insider


def test_an_organization_sees_an_order_only_while_it_is_offered_to_it_or_held_by_it(
    client, auth, place, act, world
):
    organizations = [world.organization.public_id, world.other_organization.public_id]
    pooled = act("secretary_a", place(), "dispatch", pool=True, organization_ids=organizations)
    url = f"/api/v1/orders/{pooled['id']}"
    assert client.get(url, headers=auth("org_admin")).status_code == 200
    act("other_org_admin", pooled, "take")
    # The pool is lost: the order, its progress and later its rating are another organization's. Taking
    # it late is told why (409), not that it does not exist.
    assert client.get(url, headers=auth("org_admin")).status_code == 404
    late = act("org_admin", pooled, "take", expect=409)
    assert late["details"]["state"] == "taken" and late["details"]["allowed_actions"] == []
    assert client.get(url, headers=auth("other_org_admin")).status_code == 200

    returned = act("org_admin", dispatched(place, act, world), "return", reason="人手不足")
    assert client.get(f"/api/v1/orders/{returned['id']}", headers=auth("org_admin")).status_code == 404
    assert client.get(f"/api/v1/orders/{returned['id']}", headers=auth("secretary_a")).status_code == 200


def test_a_cancelled_pooled_order_is_called_off_for_every_organization_it_was_offered_to(place, act, world):
    organizations = [world.organization.public_id, world.other_organization.public_id]
    pooled = act("secretary_a", place(), "dispatch", pool=True, organization_ids=organizations)
    act("resident_a1", pooled, "cancel", reason="已经自己修好了")
    told = db.session.execute(
        select(Notification.user_id, Notification.page).where(Notification.event == "order_resolved")
    ).all()
    # Neither may open the order any more: their messages lead nowhere rather than to a 404.
    assert sorted(told) == sorted(
        [(world.users["org_admin"].id, None), (world.users["other_org_admin"].id, None)]
    )


def test_an_organization_an_order_is_taken_from_is_told_it_went_elsewhere(place, act, world):
    order = dispatched(place, act, world)
    act(
        "secretary_a",
        order,
        "redispatch",
        organization_ids=[world.other_organization.public_id],
        note="原组织未及时签收",
    )
    told = db.session.scalars(
        select(Notification)
        .where(Notification.user_id == world.users["org_admin"].id)
        .order_by(Notification.id)
    ).all()
    # Dispatched to it, then withdrawn: the order is gone from its board, and it knows why; the message
    # leads nowhere, as the order is no longer its to open.
    assert [(n.fields.get("state"), n.page is None) for n in told] == [("待签收", False), ("已改派", True)]
    others = db.session.scalars(
        select(Notification.event).where(Notification.user_id == world.users["other_org_admin"].id)
    ).all()
    assert others == ["order_dispatched"]


def test_recommendations_are_for_the_orders_overseers_only(client, auth, place, world):
    order = place()
    url = f"/api/v1/orders/{order['id']}/recommendations"
    for overseer in ("secretary_a", "street_admin"):
        response = client.get(url, headers=auth(overseer))
        assert response.status_code == 200, overseer
        assert [c["name"] for c in response.get_json()["items"]][:1] == [world.organization.name]
    for outsider in ("secretary_b", "other_street_admin"):
        assert client.get(url, headers=auth(outsider)).status_code == 404, outsider
    for role in ("resident_a1", "org_admin", "grid_worker_a1"):
        assert client.get(url, headers=auth(role)).status_code == 403, role
    nowhere = "/api/v1/orders/od_nosuchorder000000000/recommendations"
    missing = client.get(nowhere, headers=auth("secretary_a"))
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"


def test_roles_that_cannot_call_an_action_at_all_get_403(client, auth, place):
    order = place()
    url = f"/api/v1/orders/{order['id']}"
    assert client.post(url + "/take", json={}, headers=auth("resident_a1")).status_code == 403
    assert client.post(url + "/accept", json={}, headers=auth("org_admin")).status_code == 403
    assert client.get("/api/v1/orders/board", headers=auth("resident_a1")).status_code == 403
    assert client.post("/api/v1/orders", json={}, headers=auth("org_admin")).status_code == 403


def test_a_secretary_cannot_confirm_a_residents_order_and_is_told_what_they_may_do(client, auth, place):
    # Confirming is open to whoever owns the order, whatever roles they hold now (a resident who moved away
    # holds none): a secretary who sees the order gets the state machine's 409 with their own actions.
    order = place()
    refused = client.post(
        f"/api/v1/orders/{order['id']}/confirm", json={"level": 5}, headers=auth("secretary_a")
    )
    assert refused.status_code == 409
    assert refused.get_json()["code"] == "illegal_action"
    assert refused.get_json()["details"]["allowed_actions"] == ["accept", "reject", "dispatch"]
    assert db.session.scalar(select(Order.state).where(Order.public_id == order["id"])) == "submitted"


def test_boards_keep_to_their_scope(client, auth, place, world):
    place()
    board = client.get(
        f"/api/v1/orders/board?community_id={world.community_a.public_id}", headers=auth("secretary_b")
    )
    assert board.status_code == 403
    assert client.get("/api/v1/orders/board", headers=auth("secretary_b")).get_json()["items"] == []
    other = client.get(
        f"/api/v1/organizations/{world.organization.public_id}/orders", headers=auth("other_org_admin")
    )
    assert other.status_code == 403
    assert client.get("/api/v1/orders", headers=auth("resident_b1")).get_json()["items"] == []


def test_contact_details_follow_the_organization_holding_the_order(client, auth, place, act, world):
    order = dispatched(place, act, world)
    url = f"/api/v1/orders/{order['id']}"
    assert client.get(url, headers=auth("org_admin")).get_json()["contact_phone"] == "138****8000"
    act("org_admin", order, "take")
    assert client.get(url, headers=auth("org_admin")).get_json()["contact_phone"] == "13812348000"
    act("secretary_a", order, "cancel", reason="居民已自行解决")
    shown = client.get(url, headers=auth("org_admin")).get_json()
    assert shown["contact_phone"] == "138****8000" and shown["contact_name"] == "王**"


def test_a_resident_naming_themself_places_their_own_order(client, auth, place, world):
    order = place("resident_a1", resident_id=world.users["resident_a1"].public_id)
    assert not order["entered_on_behalf"] and order["timeline"][0]["note"] == ""
    listed = client.get("/api/v1/orders", headers=auth("resident_a1")).get_json()["items"]
    assert [o["id"] for o in listed] == [order["id"]]


def test_grid_workers_enter_orders_for_their_grid_only(client, auth, place, world):
    order = place("grid_worker_a1", resident_id=world.users["resident_a1"].public_id)
    assert order["entered_on_behalf"] and order["timeline"][0]["note"] == "代录"
    listed = client.get("/api/v1/orders", headers=auth("resident_a1")).get_json()["items"]
    assert [o["id"] for o in listed] == [order["id"]]
    response = client.post(
        "/api/v1/orders",
        json={**_body(), "resident_id": world.users["resident_b1"].public_id},
        headers=auth("grid_worker_a1"),
    )
    assert response.status_code == 403


# Bad input: 422 naming the field.


def _body(**changes) -> dict:
    from tests.orders.conftest import ORDER

    return {**ORDER, **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": ""}, "description"),
        # Blank is empty: spaces (ideographic ones too) are no name, address or description.
        ({"description": "   \n "}, "description"),
        ({"contact_name": "\u3000\u3000"}, "contact_name"),
        ({"address": "  "}, "address"),
        ({"contact_phone": "12345"}, "contact_phone"),
        ({"contact_phone": "13812348000\n"}, "contact_phone"),  # $ alone would let the newline through
        ({"category": "no_such_thing"}, "category"),
        ({"answers": {}}, "answers"),
        ({"answers": {"frequency": "hourly"}}, "answers"),
        ({"answers": {"frequency": "weekly", "mood": "ok"}}, "answers"),
        ({"photo_ids": ["up_nothing"]}, "photo_ids"),
        (
            {"preferred_start": "2026-12-01T10:00:00+08:00", "preferred_end": "2026-12-01T09:00:00+08:00"},
            "preferred_end",
        ),
        ({"latitude": 123}, "latitude"),
        ({"preferred_start": "0001-01-01T00:00:00+14:00"}, "preferred_start"),  # before UTC's first day
        ({"preferred_end": "9999-12-31T23:59:59-12:00"}, "preferred_end"),  # after its last
        ({"preferred_start": "0001-01-01T00:00:00"}, "preferred_start"),  # read as +08:00
        ({"grid_id": "gr_nowhere"}, "grid_id"),
    ],
)
def test_bad_orders_are_refused_by_field(client, auth, changes, field):
    response = client.post("/api/v1/orders", json=_body(**changes), headers=auth("resident_a1"))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["details"], response.get_json()


@pytest.mark.parametrize(
    ("window", "field"),
    [
        (
            {"preferred_start": "2026-12-03T08:00:00+08:00", "preferred_end": "2026-12-03T09:00:00+08:00"},
            "preferred_end",
        ),
        ({"preferred_start": "2026-12-03T09:59:00+08:00"}, "preferred_start"),
        ({"preferred_end": "2026-12-03T10:00:00+08:00"}, "preferred_end"),
        (
            {"preferred_start": "2020-05-01T09:00:00+08:00", "preferred_end": "2020-05-01T10:00:00+08:00"},
            "preferred_end",
        ),
    ],
)
def test_a_preferred_time_already_past_is_refused(client, auth, window, field):
    with time_machine.travel(local(2026, 12, 3, 10, 0), tick=False):
        response = client.post("/api/v1/orders", json=_body(**window), headers=auth("resident_a1"))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"] == {field: ["期望服务时间已过，请重新选择"]}


def test_a_preferred_window_that_has_begun_is_kept(client, auth):
    window = {"preferred_start": "2026-12-03T09:00:00+08:00", "preferred_end": "2026-12-03T18:00:00+08:00"}
    with time_machine.travel(local(2026, 12, 3, 10, 0), tick=False):
        response = client.post("/api/v1/orders", json=_body(**window), headers=auth("resident_a1"))
    assert response.status_code == 201, response.get_json()
    placed = response.get_json()
    assert (placed["preferred_start"], placed["preferred_end"]) == (
        window["preferred_start"],
        window["preferred_end"],
    )


def test_what_people_type_is_kept_without_the_spaces_around_it(client, auth):
    body = _body(contact_name=" 王秀英\u3000", description="  独居老人，希望有人陪聊 \n")
    placed = client.post("/api/v1/orders", json=body, headers=auth("resident_a1")).get_json()
    assert (placed["contact_name"], placed["description"]) == ("王秀英", "独居老人，希望有人陪聊")


def test_an_order_nested_past_any_parsers_depth_is_400(client, auth):
    body = json.dumps(_body())[:-1] + ', "answers": ' + '{"a": ' * 3000 + "1" + "}" * 3000 + "}"
    response = client.post(
        "/api/v1/orders", data=body, headers={**auth("resident_a1"), "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.get_json()["code"] == "invalid_body"


def test_a_required_answer_names_its_question(client, auth):
    response = client.post("/api/v1/orders", json=_body(answers={}), headers=auth("resident_a1"))
    assert response.get_json()["details"]["answers"] == {"frequency": ["请回答：希望的频次"]}


def test_an_idempotency_key_reused_for_another_body_is_refused(client, auth):
    headers = {**auth("resident_a1"), "Idempotency-Key": "k-1"}
    assert client.post("/api/v1/orders", json=_body(), headers=headers).status_code == 201
    response = client.post("/api/v1/orders", json=_body(description="另一件事情"), headers=headers)
    assert response.status_code == 422 and "Idempotency-Key" in response.get_json()["details"]
    too_long = {**auth("resident_a1"), "Idempotency-Key": "x" * 65}
    assert client.post("/api/v1/orders", json=_body(), headers=too_long).status_code == 422


def test_someone_elses_photo_cannot_be_attached(client, auth):
    from tests.images import PNG as png

    uploaded = client.post(
        "/api/v1/uploads",
        data={"file": (io.BytesIO(png), "a.png")},
        headers=auth("resident_b1"),
        content_type="multipart/form-data",
    ).get_json()
    response = client.post(
        "/api/v1/orders", json=_body(photo_ids=[uploaded["id"]]), headers=auth("resident_a1")
    )
    assert response.status_code == 422 and "photo_ids" in response.get_json()["details"]


@pytest.mark.parametrize("person", ["newcomer", "org_admin", "volunteer"])
def test_someone_not_registered_in_a_grid_is_told_to_register_before_ordering(client, auth, person):
    """Holding no role that places (someone new, most likely), the answer says what to do first; it was the
    generic 403 naming the roles, in English."""
    refused = client.post("/api/v1/orders", json=_body(), headers=auth(person))
    assert refused.status_code == 403
    body = refused.get_json()
    assert (body["code"], body["message"]) == ("residence_required", "请先登记居住的网格再点单")


def test_bad_action_bodies(place, act, world):
    order = place()
    assert (
        "organization_ids"
        in act("secretary_a", order, "dispatch", expect=422, organization_ids=[])["details"]
    )
    two = [world.organization.public_id, world.other_organization.public_id]
    assert (
        "organization_ids"
        in act("secretary_a", order, "dispatch", expect=422, organization_ids=two)["details"]
    )
    assert (
        "organization_ids"
        in act("secretary_a", order, "dispatch", expect=422, organization_ids=["og_nope"])["details"]
    )
    assert "reason" in act("secretary_a", order, "reject", expect=422)["details"]


def test_duplicates_are_flagged_not_merged(place):
    first = place()
    second = place()
    assert second["id"] != first["id"] and second["possible_duplicate"] and not first["possible_duplicate"]


def test_a_duplicate_is_the_newest_open_order_of_the_same_kind(client, auth, place, act):
    first = place()
    place(category="cleaning", answers={}, description="想请人打扫卫生")  # newer, another category
    closed = place()
    act("resident_a1", closed, "cancel", reason="不需要了")  # newer, the same category, but closed
    third = place()
    timeline = client.get(f"/api/v1/orders/{third['id']}", headers=auth("resident_a1")).get_json()["timeline"]
    shown = client.get(f"/api/v1/orders/{first['id']}", headers=auth("secretary_a")).get_json()
    # Named by its public id, as the API names every order (not by its row id).
    assert third["possible_duplicate"]
    assert third["timeline"][0]["data"] == timeline[0]["data"] == {"possible_duplicate_of": first["id"]}
    assert not shown["possible_duplicate"] and shown["timeline"][0]["data"] == {}


def test_a_duplicate_named_by_its_row_id_before_is_shown_by_its_public_id(client, auth, place):
    first, second = place(), place()
    db.session.expire_all()
    ids = dict(db.session.execute(select(Order.public_id, Order.id)).all())
    placed = db.session.scalars(select(OrderEvent).where(OrderEvent.order_id == ids[second["id"]])).one()
    placed.data = {"possible_duplicate_of": ids[first["id"]]}  # as placements wrote it before
    db.session.commit()
    seen = client.get(f"/api/v1/orders/{second['id']}", headers=auth("secretary_a")).get_json()
    assert seen["timeline"][0]["data"] == {"possible_duplicate_of": first["id"]}


def _cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [
        [0, "2026-01-01T00:00:00", 1],  # a naive time
        [0, "2026-01-01T00:00:00+00:00", 2**70],  # an id past any integer column
        [0, "2026-01-01T00:00:00+00:00", 2**40],  # past PostgreSQL's INTEGER
        [99999, "2026-01-01T00:00:00+00:00", 1],  # a rank past SMALLINT
        [0, "9999-12-31T23:59:59-12:00", 1],  # a time past the last UTC one
        [0, "0001-01-01T00:00:00+14:00", 1],  # and before the first
    ],
)
def test_a_forged_cursor_of_an_urgency_list_is_422(client, auth, world, values):
    lists = {
        "secretary_a": "/api/v1/orders/board",
        "org_admin": f"/api/v1/organizations/{world.organization.public_id}/orders",
        "volunteer": "/api/v1/me/assignments",
    }
    for person, url in lists.items():
        response = client.get(url, query_string={"cursor": _cursor(values)}, headers=auth(person))
        assert response.status_code == 422, (person, response.get_json())
        assert response.get_json()["details"] == {"cursor": ["无效的游标"]}


@pytest.mark.parametrize("values", [[2**70], [2**40], [True], [-(2**63) - 1]])
def test_a_forged_cursor_of_a_residents_list_is_422(client, auth, values):
    response = client.get(
        "/api/v1/orders", query_string={"cursor": _cursor(values)}, headers=auth("resident_a1")
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"] == {"cursor": ["无效的游标"]}


@pytest.mark.parametrize("query", [{"since": "0001-01-01T00:00:00"}, {"until": "9999-12-31T23:59:59-12:00"}])
def test_rates_for_a_time_no_one_can_mean_are_422(client, auth, query):
    response = client.get("/api/v1/orders/stats", query_string=query, headers=auth("street_admin"))
    assert response.status_code == 422, response.get_json()
    assert set(response.get_json()["details"]) == set(query)


def test_the_notes_of_start_and_resume_go_on_the_timeline(place, act, world):
    order = act("org_admin", taken(place, act, world), "start", note="已联系居民，今天下午上门")
    act("org_admin", order, "suspend", reason="等居民补充材料")
    order = act("org_admin", order, "resume", note="材料已补齐")
    notes = {event["action"]: event["note"] for event in order["timeline"]}
    assert notes["start"] == "已联系居民，今天下午上门"
    assert notes["suspend"] == "等居民补充材料"
    assert notes["resume"] == "材料已补齐"
