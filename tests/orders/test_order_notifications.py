"""What each step tells people reads as that step: a step that goes through another step's WeChat template
(a rejection through order_accepted's) still has its own title and sentence in the inbox; and whom an order
leaves hears that it did."""

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
