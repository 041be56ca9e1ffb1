"""街道督办 by hand: a street admin raises a 督办 on an order of their street, with the reason, as the
automatic ones are raised: one open per order and reason, the order's flag, its timeline, and word to those
who must act on it."""

from sqlalchemy import select

from backend.db import db
from backend.notify.models import Notification
from backend.supervision.models import Supervision


def _taken(place, act, world) -> dict:
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    return act("org_admin", order, "take")


def _supervise(client, auth, order: dict, person: str = "street_admin", **body):
    return client.post(f"/api/v1/orders/{order['id']}/supervise", json=body, headers=auth(person))


def _told(world) -> dict[str, list[tuple[str, str]]]:
    people = {user.id: name for name, user in world.users.items()}
    told: dict[str, list[tuple[str, str]]] = {}
    for n in db.session.scalars(
        select(Notification).where(Notification.event == "supervision_raised").order_by(Notification.id)
    ):
        told.setdefault(people[n.user_id], []).append((n.title, n.body))
    return told


def test_a_street_admin_raises_a_supervision_on_an_order_by_hand(client, auth, place, act, world):
    order = _taken(place, act, world)
    response = _supervise(client, auth, order, reason="居民多次来电反映上门服务迟迟未到")
    assert response.status_code == 201, response.get_json()
    record = response.get_json()
    assert (record["reason"], record["reason_label"], record["status"]) == ("manual", "街道督办", "open")
    assert record["note"] == "居民多次来电反映上门服务迟迟未到"
    assert record["raised_by_system"] is False
    assert record["subject"]["id"] == order["id"] and record["subject"]["number"] == order["number"]
    assert record["title"] == f"陪伴关怀（{order['number']}）"

    shown = client.get(f"/api/v1/orders/{order['id']}", headers=auth("secretary_a")).get_json()
    assert shown["is_supervised"] is True
    last = shown["timeline"][-1]
    assert (last["action"], last["action_label"], last["actor_role"], last["by_system"]) == (
        "supervise",
        "督办",
        "street_admin",
        False,
    )
    # The timeline (the resident's and the organization's to read) says only that the street raised it.
    assert last["note"] == ""
    assert last["actor_id"] == world.users["street_admin"].public_id

    # Told as an overdue one is told: the organization holding it, the community's secretaries; the street
    # admin who raised it is not told of their own act.
    told = _told(world)
    assert set(told) == {"org_admin", "secretary_a"}
    title, body = told["org_admin"][0]
    assert title == "督办提醒"
    assert body.startswith("「陪伴关怀」已列入督办，请尽快处理。")
    assert "街道督办：居民多次来电反映上门服务迟迟未到" in body

    # The list shows it to the community's secretary and the street.
    listed = client.get("/api/v1/supervisions?reason=manual", headers=auth("secretary_a")).get_json()
    assert [r["id"] for r in listed["items"]] == [record["id"]]


def test_one_open_manual_supervision_per_order_and_another_after_closing(client, auth, place, act, world):
    order = _taken(place, act, world)
    first = _supervise(client, auth, order, reason="服务迟迟未到")
    assert first.status_code == 201
    again = _supervise(client, auth, order, reason="再次督办")
    assert again.status_code == 409
    assert again.get_json()["code"] == "supervision_exists"
    assert again.get_json()["message"] == "该事项已在督办中"
    assert db.session.scalar(select(Supervision.id).where(Supervision.note == "再次督办")) is None

    closed = client.post(
        f"/api/v1/supervisions/{first.get_json()['id']}/close",
        json={"resolution": "已约谈组织负责人"},
        headers=auth("street_admin"),
    )
    assert closed.status_code == 200
    assert not client.get(f"/api/v1/orders/{order['id']}", headers=auth("street_admin")).get_json()[
        "is_supervised"
    ]
    assert _supervise(client, auth, order, reason="整改后仍未上门").status_code == 201


def test_who_may_raise_one_and_bad_input(client, auth, place, act, world):
    order = _taken(place, act, world)
    # The street's 督办 is the street admin's (DESIGN): the secretary is supervised, not supervising.
    for person in ("secretary_a", "org_admin", "resident_a1", "volunteer"):
        assert _supervise(client, auth, order, person=person, reason="服务迟迟未到").status_code == 403
    # Another street's admin cannot see the order at all.
    refused = _supervise(client, auth, order, person="other_street_admin", reason="服务迟迟未到")
    assert refused.status_code == 404
    assert _supervise(client, auth, {"id": "od_nope"}, reason="服务迟迟未到").status_code == 404

    for body, message in (({}, "reason"), ({"reason": "慢"}, "reason"), ({"reason": 5}, "reason")):
        response = _supervise(client, auth, order, **body)
        assert response.status_code == 422, body
        assert message in response.get_json()["details"]
    response = client.post(f"/api/v1/orders/{order['id']}/supervise", data="[", headers=auth("street_admin"))
    assert response.status_code in (400, 422)
    assert db.session.scalar(select(Supervision.id)) is None


def test_the_reason_reaches_staff_only_never_the_resident(client, auth, place, act, world):
    order = _taken(place, act, world)
    reason = "该组织多次敷衍，居民态度也差"
    record = _supervise(client, auth, order, reason=reason).get_json()

    # The resident and the organization read the order's timeline: it says a 督办 was raised, no more.
    for person in ("resident_a1", "org_admin", "secretary_a", "street_admin"):
        response = client.get(f"/api/v1/orders/{order['id']}", headers=auth(person))
        assert response.status_code == 200, person
        assert reason not in response.get_data(as_text=True), person
        last = response.get_json()["timeline"][-1]
        assert (last["action"], last["action_label"], last["note"]) == ("supervise", "督办", ""), person
        assert last["data"] == {"reason": "manual"}, person
    listed = client.get("/api/v1/orders", headers=auth("resident_a1")).get_data(as_text=True)
    assert reason not in listed

    # Nothing the resident is sent carries it; those answerable (staff) are told why.
    resident = world.users["resident_a1"].id
    for n in db.session.scalars(select(Notification).where(Notification.user_id == resident)):
        assert reason not in f"{n.title}{n.body}{n.fields}"
    told = _told(world)
    assert "resident_a1" not in told
    assert all(reason in body for _, body in told["org_admin"] + told["secretary_a"])
    inbox = client.get("/api/v1/notifications", headers=auth("resident_a1")).get_data(as_text=True)
    assert reason not in inbox

    # The record keeps it, for the street and the community's secretary.
    for person in ("street_admin", "secretary_a"):
        shown = client.get(f"/api/v1/supervisions/{record['id']}", headers=auth(person)).get_json()
        assert shown["note"] == reason


def test_a_retry_under_one_idempotency_key_gets_the_first_record(client, auth, place, act, world):
    order = _taken(place, act, world)
    headers = {**auth("street_admin"), "Idempotency-Key": "supervise-1"}
    url = f"/api/v1/orders/{order['id']}/supervise"
    first = client.post(url, json={"reason": "服务迟迟未到"}, headers=headers)
    assert first.status_code == 201
    again = client.post(url, json={"reason": "服务迟迟未到"}, headers=headers)
    assert again.status_code == 201, again.get_json()
    assert again.get_json() == first.get_json()
    assert len(db.session.scalars(select(Supervision)).all()) == 1
    # Told once, not again on the retry.
    assert len(_told(world)["org_admin"]) == 1

    other = client.post(url, json={"reason": "再次督办"}, headers=headers)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["details"]
    # The same key on another order is another request: that order's own 督办.
    second = _taken(place, act, world)
    response = client.post(
        f"/api/v1/orders/{second['id']}/supervise", json={"reason": "服务迟迟未到"}, headers=headers
    )
    assert response.status_code == 201
    assert response.get_json()["subject"]["id"] == second["id"]
    # Without a key a repeat is still refused as before.
    assert _supervise(client, auth, order, reason="服务迟迟未到").status_code == 409
    spec = client.get("/api/openapi.json").get_json()
    parameters = spec["paths"]["/api/v1/orders/{order_id}/supervise"]["post"]["parameters"]
    assert "Idempotency-Key" in [p["name"] for p in parameters]
