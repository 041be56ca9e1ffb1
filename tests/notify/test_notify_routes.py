"""The inbox, subscriptions and templates through the API: own notifications only, 422s naming the field."""

import base64
from datetime import timedelta

import pytest
import time_machine

from backend import clock
from backend.db import db
from backend.notify import service


def notify(user, event="order_accepted", subject="水管漏水维修", **kwargs):
    notification = service.notify(user_id=user.id, event=event, fields={"subject": subject}, **kwargs)
    db.session.commit()
    return notification


# Inbox


def test_the_inbox_lists_own_notifications_newest_first_in_pages(client, auth, world):
    resident = world.users["resident_a1"]
    start = clock.now()
    for i in range(5):
        with time_machine.travel(start + timedelta(minutes=i), tick=False):
            notify(resident, subject=f"事项{i}")
    notify(world.users["resident_b1"], subject="别人的事项")
    headers = auth("resident_a1")

    first = client.get("/api/v1/notifications?limit=3", headers=headers)
    assert first.status_code == 200
    body = first.get_json()
    assert [item["body"].split("」")[0] for item in body["items"]] == [
        "您的「事项4",
        "您的「事项3",
        "您的「事项2",
    ]
    assert body["unread_count"] == 5
    second = client.get(
        f"/api/v1/notifications?limit=3&cursor={body['next_cursor']}", headers=headers
    ).get_json()
    assert [item["body"][:6] for item in second["items"]] == ["您的「事项1", "您的「事项0"]
    assert second["next_cursor"] is None

    item = body["items"][0]
    assert set(item) == {
        "id",
        "event",
        "title",
        "body",
        "page",
        "status",
        "status_label",
        "created_at",
        "read_at",
        "history",
    }
    assert item["id"].startswith("ntf_")
    assert (item["event"], item["title"], item["status"]) == ("order_accepted", "工单已受理", "pending")
    assert item["status_label"] == "待发送微信提醒"
    assert item["created_at"].endswith("+08:00")
    assert item["read_at"] is None
    assert [(h["outcome"], h["outcome_label"]) for h in item["history"]] == [("queued", "已排队发送微信提醒")]
    assert item["history"][0]["at"].endswith("+08:00")


def test_read_one_read_all_and_the_unread_filter(client, auth, world):
    resident = world.users["resident_a1"]
    first, second, third = (notify(resident, subject=s) for s in ("甲", "乙", "丙"))
    headers = auth("resident_a1")

    read = client.post(f"/api/v1/notifications/{second.public_id}/read", headers=headers)
    assert read.status_code == 200
    assert read.get_json()["read_at"].endswith("+08:00")
    unread = client.get("/api/v1/notifications?unread=true", headers=headers).get_json()
    assert [item["id"] for item in unread["items"]] == [third.public_id, first.public_id]
    assert unread["unread_count"] == 2

    done = client.post("/api/v1/notifications/read-all", headers=headers)
    assert done.status_code == 200
    assert done.get_json() == {"updated": 2, "unread_count": 0}
    assert client.get("/api/v1/notifications?unread=true", headers=headers).get_json()["items"] == []
    again = client.post("/api/v1/notifications/read-all", headers=headers).get_json()
    assert again == {"updated": 0, "unread_count": 0}


def test_nobody_reads_anothers_notification(client, auth, world):
    mine = notify(world.users["resident_a1"])
    others = auth("resident_b1")
    for response in (
        client.get(f"/api/v1/notifications/{mine.public_id}", headers=others),
        client.post(f"/api/v1/notifications/{mine.public_id}/read", headers=others),
        client.get("/api/v1/notifications/ntf_doesnotexist0000", headers=others),
    ):
        assert response.status_code == 404
        assert response.get_json()["code"] == "notification_not_found"
    assert client.get("/api/v1/notifications", headers=others).get_json()["items"] == []
    client.post("/api/v1/notifications/read-all", headers=others)
    db.session.refresh(mine)
    assert mine.read_at is None

    own = client.get(f"/api/v1/notifications/{mine.public_id}", headers=auth("resident_a1"))
    assert own.status_code == 200
    assert own.get_json()["id"] == mine.public_id


def test_the_inbox_needs_a_sign_in(client):
    assert client.get("/api/v1/notifications").status_code == 401


def test_bad_inbox_queries_are_422(client, auth, world):
    headers = auth("resident_a1")
    response = client.get("/api/v1/notifications?limit=0&unread=perhaps", headers=headers)
    assert response.status_code == 422
    assert set(response.get_json()["details"]) == {"limit", "unread"}
    cursor = client.get("/api/v1/notifications?cursor=@@@", headers=headers)
    assert cursor.status_code == 422
    assert "cursor" in cursor.get_json()["details"]


@pytest.mark.parametrize("key", ["9" * 40, "-" + "9" * 40, "9223372036854775808"])
def test_a_cursor_beyond_any_id_is_422(client, auth, world, key):
    # A well-formed cursor naming a number no integer column can hold (SQLite refused it: a 500).
    cursor = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    response = client.get(f"/api/v1/notifications?cursor={cursor}", headers=auth("resident_a1"))
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["details"]) == ["cursor"]


# Subscriptions


def test_subscribe_results_are_recorded_per_template(client, auth, templates):
    headers = auth("resident_a1")
    accepted = templates["order_accepted"].template_id
    resolved = templates["order_resolved"].template_id
    taken = templates["order_taken"].template_id
    overdue = templates["order_overdue"].template_id
    response = client.post(
        "/api/v1/notifications/subscriptions",
        json={"results": {accepted: "accept", resolved: "accept", taken: "reject", overdue: "filter"}},
        headers=headers,
    )
    assert response.status_code == 200
    client.post(
        "/api/v1/notifications/subscriptions",
        json={"results": {"errMsg": "requestSubscribeMessage:ok", accepted: "accept", resolved: "ban"}},
        headers=headers,
    )
    listed = client.get("/api/v1/notifications/subscriptions", headers=headers).get_json()["items"]
    by_event = {item["event"]: item for item in listed}
    assert by_event["order_accepted"] == {
        "event": "order_accepted",
        "title": "工单已受理",
        "template_id": accepted,
        "enabled": True,
        "remaining": 2,
    }
    assert by_event["order_resolved"]["remaining"] == 0
    assert by_event["order_taken"]["remaining"] == 0
    assert by_event["order_overdue"]["remaining"] == 0
    assert "sla_warning" not in by_event
    # Someone else's grants are theirs alone.
    other = client.get("/api/v1/notifications/subscriptions", headers=auth("resident_b1")).get_json()["items"]
    assert {item["remaining"] for item in other} == {0}


def test_a_retried_subscribe_with_its_idempotency_key_counts_once(client, auth, templates):
    accepted = templates["order_accepted"].template_id
    url = "/api/v1/notifications/subscriptions"
    body = {"results": {accepted: "accept"}}
    first = client.post(url, json=body, headers={**auth("resident_a1"), "Idempotency-Key": "sub-1"})
    # WeChat granted one message: the mini-program's retry of the same answer must not count a second.
    retry = client.post(url, json=body, headers={**auth("resident_a1"), "Idempotency-Key": "sub-1"})
    assert first.status_code == retry.status_code == 200
    assert first.get_json() == retry.get_json()
    remaining = {i["event"]: i["remaining"] for i in retry.get_json()["items"]}
    assert remaining["order_accepted"] == 1
    # The next answer is a new key; the same key with another answer is a client's mistake.
    nxt = client.post(url, json=body, headers={**auth("resident_a1"), "Idempotency-Key": "sub-2"})
    assert {i["event"]: i["remaining"] for i in nxt.get_json()["items"]}["order_accepted"] == 2
    other = {"results": {accepted: "ban"}}
    reused = client.post(url, json=other, headers={**auth("resident_a1"), "Idempotency-Key": "sub-2"})
    assert reused.status_code == 422 and list(reused.get_json()["details"]) == ["Idempotency-Key"]
    # Keys are the caller's own: another resident's first use of the same key counts for them.
    theirs = client.post(url, json=body, headers={**auth("resident_b1"), "Idempotency-Key": "sub-1"})
    assert {i["event"]: i["remaining"] for i in theirs.get_json()["items"]}["order_accepted"] == 1


def test_unknown_templates_and_answers_are_422_naming_them(client, auth, templates):
    headers = auth("resident_a1")
    accepted = templates["order_accepted"].template_id
    unknown = client.post(
        "/api/v1/notifications/subscriptions",
        json={"results": {accepted: "accept", "no-such-template": "accept"}},
        headers=headers,
    )
    assert unknown.status_code == 422
    assert unknown.get_json()["details"] == {"results": {"no-such-template": ["不是已配置的订阅消息模板"]}}
    # Nothing of a refused request was kept.
    listed = client.get("/api/v1/notifications/subscriptions", headers=headers).get_json()["items"]
    assert {item["remaining"] for item in listed} == {0}

    bad_answer = client.post(
        "/api/v1/notifications/subscriptions", json={"results": {accepted: "yes please"}}, headers=headers
    )
    assert bad_answer.status_code == 422
    assert "results" in bad_answer.get_json()["details"]
    missing = client.post("/api/v1/notifications/subscriptions", json={}, headers=headers)
    assert missing.status_code == 422
    assert "results" in missing.get_json()["details"]


# Templates


def test_anyone_signed_in_lists_templates_only_street_admins_edit(client, auth):
    listed = client.get("/api/v1/notifications/templates", headers=auth("resident_a1"))
    assert listed.status_code == 200
    items = listed.get_json()["items"]
    assert [item["event"] for item in items][:2] == ["order_accepted", "order_dispatched"]
    assert items[0]["fields"]["thing1"] == "subject"
    assert items[0]["edited"] is False

    change = {"template_id": "AbC-real-id", "fields": {"thing1": "subject", "time2": "at"}, "enabled": True}
    forbidden = client.put(
        "/api/v1/notifications/templates/order_accepted", json=change, headers=auth("resident_a1")
    )
    assert forbidden.status_code == 403
    edited = client.put(
        "/api/v1/notifications/templates/order_accepted", json=change, headers=auth("street_admin")
    )
    assert edited.status_code == 200
    assert edited.get_json()["template_id"] == "AbC-real-id"
    assert edited.get_json()["edited"] is True
    # The new id is the one the mini-program asks for and the one grants are recorded against.
    granted = client.post(
        "/api/v1/notifications/subscriptions",
        json={"results": {"AbC-real-id": "accept"}},
        headers=auth("resident_a1"),
    )
    assert {i["event"]: i["remaining"] for i in granted.get_json()["items"]}["order_accepted"] == 1


def test_bad_template_edits_are_refused(client, auth):
    headers = auth("street_admin")
    bad = client.put(
        "/api/v1/notifications/templates/order_accepted",
        json={"template_id": "", "fields": {"thing1": "colour", "banana": "subject", "time4": "subject"}},
        headers=headers,
    )
    assert bad.status_code == 422
    details = bad.get_json()["details"]
    assert set(details) == {"template_id", "fields"}
    assert set(details["fields"]) == {"thing1", "banana", "time4"}
    unknown = client.put(
        "/api/v1/notifications/templates/order_exploded",
        json={"template_id": "x", "fields": {"thing1": "subject"}},
        headers=headers,
    )
    assert unknown.status_code == 404
    inbox_only = client.put(
        "/api/v1/notifications/templates/sla_warning",
        json={"template_id": "x", "fields": {"thing1": "subject"}},
        headers=headers,
    )
    assert inbox_only.status_code == 422
    assert "event" in inbox_only.get_json()["details"]


def test_a_keyword_our_fields_cannot_fill_is_refused_by_name(client, auth):
    """A template's amount or name keyword would fail every message (WeChat wants money or a person's name
    there): the street admin hears so when mapping it, not from messages that never arrive."""
    response = client.put(
        "/api/v1/notifications/templates/order_accepted",
        json={"template_id": "AbC-real-id", "fields": {"thing1": "subject", "amount2": "number"}},
        headers=auth("street_admin"),
    )
    assert response.status_code == 422
    assert list(response.get_json()["details"]["fields"]) == ["amount2"]
