"""End to end: a real `sandan worker` process relays the outbox and sends through the fake WeChat server."""

from sqlalchemy import select

from backend.db import db
from backend.notify import service
from backend.notify.models import Notification
from backend.outbox.models import OutboxMessage
from tests.worker_process import running_worker, wait_for


def _delivered(notification_id: int) -> bool:
    db.session.rollback()  # a fresh transaction sees what the worker committed
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.job == "notify.send"))
    notification = db.session.get(Notification, notification_id)
    return message is not None and message.done_at is not None and notification.status != "pending"


def test_a_real_worker_sends_exactly_one_message(app, client, auth, world, templates, fake_wechat, tmp_path):
    resident = world.users["resident_a1"]
    template_id = templates["order_taken"].template_id
    response = client.post(
        "/api/v1/notifications/subscriptions",
        json={"results": {template_id: "accept"}},
        headers=auth("resident_a1"),
    )
    assert response.status_code == 200
    notification = service.notify(
        user_id=resident.id,
        event="order_taken",
        fields={"subject": "水管漏水维修", "number": "SD20260501001"},
        page="pages/orders/detail?id=o_1",
    )
    db.session.commit()

    # `sandan worker` relays the outbox in a thread; `--burst` does not relay, so the long-running form it is.
    with running_worker(app):
        wait_for(lambda: _delivered(notification.id), timeout=60, what="the notification delivered")

    [message] = fake_wechat.state.messages()
    assert (message["touser"], message["template_id"]) == (resident.openid, template_id)
    assert message["data"]["thing1"] == {"value": "水管漏水维修"}
    db.session.expire_all()
    db.session.refresh(notification)
    assert notification.status == "sent"
    assert notification.msgid == str(message["msgid"])
    [outbox_message] = db.session.query(OutboxMessage).all()
    assert outbox_message.done_at is not None
    listed = client.get("/api/v1/notifications/subscriptions", headers=auth("resident_a1")).get_json()[
        "items"
    ]
    assert {i["event"]: i["remaining"] for i in listed}["order_taken"] == 0
