"""What each step tells people reads as that step: a step that goes through another step's WeChat template
(a rejection through order_accepted's) still has its own title and sentence in the inbox; whom an order
leaves hears that it did; and a 督办 is told to those who must act on it, whatever raised it."""

import pytest
from redis import Redis
from sqlalchemy import select

from backend.db import db
from backend.notify.models import Notification
from backend.orders.models import Order
from backend.orders.service import announce_placed
from tests.worker_process import run_due_jobs


def _last(person: str, world) -> Notification:
    return db.session.scalars(
        select(Notification)
        .where(Notification.user_id == world.users[person].id)
        .order_by(Notification.id.desc())
        .limit(1)
    ).one()


def _taken(place, act, world) -> dict:
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    return act("org_admin", order, "take")


def test_a_new_order_asks_the_secretary_to_accept_it(place, world):
    order = place()
    announce_placed(order_id=db.session.scalar(select(Order.id).where(Order.public_id == order["id"])))
    db.session.commit()
    told = _last("secretary_a", world)
    assert told.title == "新工单待受理"
    assert told.body.startswith("居民点了「陪伴关怀」，请及时受理。"), told.body


def test_only_an_order_still_waiting_when_the_worker_announces_it_asks_to_be_accepted(
    app, in_worker, place, act, world
):
    """The announcement is a job: it may run long after the order was placed (the relay behind, Redis down,
    the worker starting), when the secretary has accepted, dispatched or the resident cancelled it."""
    waiting, dispatched = place(), place(description="希望有人陪同去医院复查")
    act("secretary_a", dispatched, "dispatch", organization_ids=[world.organization.public_id])
    act("resident_a1", place(description="想找人聊聊天"), "cancel", reason="家人回来了")
    run_due_jobs(Redis.from_url(app.config["REDIS_URL"]))
    db.session.expire_all()
    asked = db.session.scalars(
        select(Order.public_id)
        .join(Notification, (Notification.subject_type == "order") & (Notification.subject_id == Order.id))
        .where(Notification.user_id == world.users["secretary_a"].id, Notification.title == "新工单待受理")
    ).all()
    assert asked == [waiting["id"]]


def test_a_rejected_order_is_told_as_rejected(place, act, world):
    act("secretary_a", place(), "reject", reason="不属于本社区服务范围")
    told = _last("resident_a1", world)
    assert told.title == "工单已驳回"
    assert told.body.startswith("您的「陪伴关怀」未被社区受理。") and "不属于本社区服务范围" in told.body


def test_a_cancelled_order_does_not_ask_for_a_rating(place, act, world):
    act("secretary_a", _taken(place, act, world), "cancel", reason="居民电话告知不需要了")
    for person in ("resident_a1", "org_admin"):
        told = _last(person, world)
        assert told.title == "工单已取消" and "评价" not in told.body, (person, told.body)


def test_a_returned_order_asks_the_secretary_to_dispatch_it_again(place, act, world):
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    act("org_admin", order, "return", reason="人手不足")
    told = _last("secretary_a", world)
    assert told.title == "工单被退回" and "请重新派单" in told.body and "人手不足" in told.body


def test_the_other_organizations_of_a_pool_are_told_it_was_taken(client, auth, place, act, world):
    organizations = [world.organization.public_id, world.other_organization.public_id]
    pooled = act("secretary_a", place(), "dispatch", pool=True, organization_ids=organizations)
    act("org_admin", pooled, "take")
    told = _last("other_org_admin", world)
    assert told.title == "工单已由其他组织接单"
    assert told.body.startswith("「陪伴关怀」已由其他服务组织接单，无需再办理。"), told.body
    # The order has left its board: the message leads nowhere rather than to a page saying it does not exist.
    assert told.page is None
    assert client.get(f"/api/v1/orders/{pooled['id']}", headers=auth("other_org_admin")).status_code == 404
    # The organization that took it is told nothing of the kind.
    assert _last("org_admin", world).title == "工单已派单"


def _supervision_notices(world) -> dict[str, list[str]]:
    """Per person told of a 督办, the notes of what they were told."""
    people = {user.id: name for name, user in world.users.items()}
    told: dict[str, list[str]] = {}
    for n in db.session.scalars(select(Notification).where(Notification.event == "supervision_raised")):
        told.setdefault(people[n.user_id], []).append(n.fields.get("note"))
    return told


def _resolved(place, act, world) -> dict:
    return act("org_admin", _taken(place, act, world), "resolve", note="已上门陪伴")


def _rated_badly(place, act, world) -> None:
    act("resident_a1", _resolved(place, act, world), "confirm", level=1, comment="没有人来")


def _returned_three_times(place, act, world) -> None:
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    for reason in ("人手不足", "仍然人手不足", "还是人手不足"):
        act("org_admin", order, "return", reason=reason)
        order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])


def _reopened_twice(place, act, world) -> None:
    order = act("resident_a1", _resolved(place, act, world), "reopen", reason="还是没人来")
    order = act("org_admin", act("org_admin", order, "take"), "resolve", note="再次上门")
    act("resident_a1", order, "reopen", reason="依旧没人来")


@pytest.mark.parametrize(
    ("raise_it", "reason", "organization_told"),
    [
        (_rated_badly, "居民不满意", True),
        # Returned, the order is nobody's: the secretary must dispatch it again.
        (_returned_three_times, "多次退单", False),
        (_reopened_twice, "二次重办", True),
    ],
    ids=["bad_rating", "repeated_return", "second_reopen"],
)
def test_a_supervision_is_told_once_to_whoever_must_act_on_it(
    place, act, world, raise_it, reason, organization_told
):
    """Only an overdue clock's 督办 told anyone: one raised by a rating, returns or reopens was found only by
    those who looked at the order or the 督办 list."""
    raise_it(place, act, world)
    expected = {"secretary_a": [reason], "street_admin": [reason]}
    if organization_told:
        expected["org_admin"] = [reason]
    assert _supervision_notices(world) == expected
    told = db.session.scalars(select(Notification).where(Notification.event == "supervision_raised")).first()
    assert told.title == "督办提醒" and told.body.startswith("「陪伴关怀」已列入督办，请尽快处理。")
    assert told.page is not None
