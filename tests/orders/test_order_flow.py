"""The full loop through the HTTP API with a real worker: a resident orders, the secretary accepts and
dispatches, the organization takes, its volunteer resolves with a photo, the resident rates; WeChat hears of
each step the resident subscribed to exactly once."""

import io

from sqlalchemy import select

from backend.db import db
from backend.notify import service as notify
from backend.notify.models import Notification
from tests.images import PNG, same_picture
from tests.worker_process import running_worker, wait_for


def upload(client, headers) -> str:
    response = client.post(
        "/api/v1/uploads",
        data={"file": (io.BytesIO(PNG), "photo.png")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def template(event: str) -> str:
    return next(t.template_id for t in notify.list_templates() if t.event == event)


def test_resident_orders_secretary_dispatches_organization_takes_volunteer_resolves_resident_rates(
    app, client, auth, world, fake_wechat, act
):
    resident = world.users["resident_a1"]
    grants = {template(e): "accept" for e in ("order_accepted", "order_taken", "order_resolved")}
    assert (
        client.post(
            "/api/v1/notifications/subscriptions", json={"results": grants}, headers=auth("resident_a1")
        ).status_code
        == 200
    )

    photo = upload(client, auth("resident_a1"))
    body = {
        "category": "companionship",
        "description": "独居老人，希望每周有人上门陪聊",
        "answers": {"frequency": "weekly"},
        "address": "阳光社区3号楼2单元501",
        "contact_name": "王秀英",
        "contact_phone": "13812348000",
        "photo_ids": [photo],
    }
    headers = {**auth("resident_a1"), "Idempotency-Key": "order-1"}
    placed = client.post("/api/v1/orders", json=body, headers=headers)
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    # A retry of the same request (the phone lost the answer) returns the same order, not a second one.
    again = client.post("/api/v1/orders", json=body, headers=headers)
    assert again.status_code == 201 and again.get_json()["id"] == order["id"]
    assert order["state"] == "submitted" and order["allowed_actions"] == ["cancel"]
    assert order["contact_phone"] == "13812348000" and len(order["photos"]) == 1

    board = client.get("/api/v1/orders/board", headers=auth("secretary_a")).get_json()
    assert [o["id"] for o in board["items"]] == [order["id"]] and board["counts"]["submitted"] == 1
    order = act("secretary_a", order, "accept")
    assert order["state"] == "accepted" and order["due_at"] is not None
    ranked = client.get(
        f"/api/v1/orders/{order['id']}/recommendations", headers=auth("secretary_a")
    ).get_json()
    assert {c["organization_id"] for c in ranked["items"]} == {
        world.organization.public_id,
        world.other_organization.public_id,
    }
    assert all(c["reasons"] for c in ranked["items"])
    order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
    assert order["state"] == "dispatched"

    # Before taking it, the organization sees neither phone nor address.
    seen = client.get(f"/api/v1/orders/{order['id']}", headers=auth("org_admin")).get_json()
    assert seen["contact_phone"] == "138****8000" and "501" not in seen["address"] and seen["contact_masked"]
    assert seen["allowed_actions"] == ["take", "return"]
    listed = client.get(
        f"/api/v1/organizations/{world.organization.public_id}/orders", headers=auth("org_admin")
    )
    assert [o["id"] for o in listed.get_json()["items"]] == [order["id"]]
    order = act("org_admin", order, "take")
    assert order["state"] == "taken" and order["contact_phone"] == "13812348000"
    order = act("org_admin", order, "assign", volunteer_ids=[world.volunteer_entry.public_id])
    assert [v["name"] for v in order["volunteers"]] == ["李志愿"]

    mine = client.get("/api/v1/me/assignments", headers=auth("volunteer")).get_json()
    assert [o["id"] for o in mine["items"]] == [order["id"]]
    order = act("volunteer", order, "start")
    proof = upload(client, auth("volunteer"))
    order = act("volunteer", order, "resolve", note="已上门陪伴两小时，约好下周再来", proof_ids=[proof])
    assert order["state"] == "resolved" and len(order["proof"]) == 1
    proof_url = order["proof"][0]["url"]
    assert same_picture(client.get(proof_url, headers=auth("resident_a1")).data, PNG)
    small_url = order["proof"][0]["small_url"]
    assert same_picture(client.get(small_url, headers=auth("resident_a1")).data, PNG)  # small already
    assert client.get(small_url, headers=auth("resident_b1")).status_code == 404

    order = act("resident_a1", order, "confirm", level=5, tags=["准时", "耐心"], comment="谢谢志愿者")
    assert order["state"] == "closed" and order["rating"]["level_label"] == "很满意"
    assert [e["action"] for e in order["timeline"]] == [
        "place",
        "accept",
        "dispatch",
        "take",
        "assign",
        "start",
        "resolve",
        "confirm",
    ]
    assert order["timeline"][3]["actor_role"] == "org_admin" and not order["timeline"][3]["by_system"]
    # Closed: the organization's view of the contact is masked again.
    closed = client.get(f"/api/v1/orders/{order['id']}", headers=auth("org_admin")).get_json()
    assert closed["contact_phone"] == "138****8000"

    # A real worker relays the outbox and delivers: one message per subscribed step, none twice.
    with running_worker(app):
        wait_for(
            lambda: len(fake_wechat.state.messages(touser=resident.openid)) >= 3,
            what="three subscribe messages to the resident",
        )

        def settled():
            db.session.expire_all()
            return all(
                n.status in ("sent", "no_grant", "inbox_only")
                for n in db.session.scalars(select(Notification).where(Notification.user_id == resident.id))
            )

        wait_for(settled, what="every notification to the resident settled")
    sent = fake_wechat.state.messages(touser=resident.openid)
    assert sorted(m["template_id"] for m in sent) == sorted(grants)
    inbox = client.get("/api/v1/notifications", headers=auth("resident_a1")).get_json()
    assert {n["event"] for n in inbox["items"]} >= {"order_accepted", "order_taken", "order_resolved"}
