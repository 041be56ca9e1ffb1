"""街道督办 by hand on an errand: the street admin writes why; the errand's timeline shows it, the community,
the street and the agent holding the step hear of it, as of an overdue step's 督办."""

from sqlalchemy import select

from backend.db import db
from backend.errands import service
from backend.notify.models import Notification
from backend.supervision.models import Supervision
from tests.errands.errand_helpers import accept, row


def _supervise(client, auth, errand: dict, person: str = "street_admin", **body):
    return client.post(f"/api/v1/errands/{errand['id']}/supervise", json=body, headers=auth(person))


def _told(world) -> dict[str, list[tuple[str, str]]]:
    people = {user.id: name for name, user in world.users.items()}
    told: dict[str, list[tuple[str, str]]] = {}
    for n in db.session.scalars(
        select(Notification).where(Notification.event == "supervision_raised").order_by(Notification.id)
    ):
        told.setdefault(people[n.user_id], []).append((n.title, n.body))
    return told


def test_a_street_admin_raises_a_supervision_on_an_errand_by_hand(client, auth, create, act, world):
    errand = create()
    accept(act, world, errand)
    response = _supervise(client, auth, errand, reason="居民反映代办员一周未联系")
    assert response.status_code == 201, response.get_json()
    record = response.get_json()
    assert (record["reason"], record["reason_label"], record["status"]) == ("manual", "街道督办", "open")
    assert record["note"] == "居民反映代办员一周未联系"
    assert record["subject"]["type"] == "errand" and record["subject"]["id"] == errand["id"]
    assert record["title"] == f"低保申请（{errand['number']}）"

    shown = client.get(f"/api/v1/errands/{errand['id']}", headers=auth("secretary_a")).get_json()
    last = shown["timeline"][-1]
    assert (last["action"], last["actor_role"], last["by_system"]) == ("supervise", "street_admin", False)
    # The timeline (the resident's to read) says only that the street raised it.
    assert last["text"] == "街道已将本代办列入督办"
    assert shown["state"] == "accepted"

    # The community's secretaries and the agent holding the step; not the raiser, nor the other agent.
    told = _told(world)
    assert set(told) == {"secretary_a", "agent_a"}
    title, body = told["agent_a"][0]
    assert title == "督办提醒"
    assert body.startswith("「低保申请」已列入督办，请尽快处理。")
    assert "街道督办：居民反映代办员一周未联系" in body

    again = _supervise(client, auth, errand, reason="再次督办")
    assert again.status_code == 409 and again.get_json()["code"] == "supervision_exists"
    # The step's own notice (the outbox job) is untouched: a 督办 is no step.
    assert service.timeline(row(errand))[-1].action == "supervise"


def test_an_errand_waiting_to_be_received_tells_the_community_only(client, auth, create, world):
    errand = create()
    assert _supervise(client, auth, errand, reason="预约后两天无人受理").status_code == 201
    assert set(_told(world)) == {"secretary_a"}


def test_who_may_raise_one_on_an_errand_and_bad_input(client, auth, create, act, world):
    errand = create()
    accept(act, world, errand)
    for person in ("secretary_a", "agent_a", "resident_a1"):
        assert _supervise(client, auth, errand, person=person, reason="进度太慢").status_code == 403
    assert _supervise(client, auth, errand, person="other_street_admin", reason="进度太慢").status_code == 404
    assert _supervise(client, auth, {"id": "eb_nope"}, reason="进度太慢").status_code == 404
    for body in ({}, {"reason": "慢"}, {"reason": ["进度太慢"]}):
        response = _supervise(client, auth, errand, **body)
        assert response.status_code == 422 and "reason" in response.get_json()["details"], body
    assert db.session.scalar(select(Supervision.id)) is None


def test_the_reason_reaches_staff_only_never_the_resident(client, auth, create, act, world):
    errand = create()
    accept(act, world, errand)
    reason = "代办员多次敷衍，居民态度也差"
    record = _supervise(client, auth, errand, reason=reason).get_json()

    for person in ("resident_a1", "agent_a", "secretary_a", "street_admin"):
        response = client.get(f"/api/v1/errands/{errand['id']}", headers=auth(person))
        assert response.status_code == 200, person
        assert reason not in response.get_data(as_text=True), person
        last = response.get_json()["timeline"][-1]
        assert (last["action"], last["note"], last["text"]) == ("supervise", "", "街道已将本代办列入督办")
    assert reason not in client.get("/api/v1/errands", headers=auth("resident_a1")).get_data(as_text=True)

    # Nothing the resident is sent carries it (the step notices run too); staff are told why.
    service.step_actions(errand_id=row(errand).id, event_id=service.timeline(row(errand))[-1].id)
    resident = world.users["resident_a1"].id
    for n in db.session.scalars(select(Notification).where(Notification.user_id == resident)):
        assert reason not in f"{n.title}{n.body}{n.fields}"
    told = _told(world)
    assert "resident_a1" not in told
    assert all(reason in body for _, body in told["agent_a"] + told["secretary_a"])

    shown = client.get(f"/api/v1/supervisions/{record['id']}", headers=auth("secretary_a")).get_json()
    assert shown["note"] == reason


def test_a_retry_under_one_idempotency_key_gets_the_first_record(client, auth, create, act, world):
    errand = create()
    accept(act, world, errand)
    headers = {**auth("street_admin"), "Idempotency-Key": "supervise-1"}
    url = f"/api/v1/errands/{errand['id']}/supervise"
    first = client.post(url, json={"reason": "进度太慢"}, headers=headers)
    assert first.status_code == 201
    again = client.post(url, json={"reason": "进度太慢"}, headers=headers)
    assert again.status_code == 201, again.get_json()
    assert again.get_json() == first.get_json()
    assert len(db.session.scalars(select(Supervision)).all()) == 1
    assert len(_told(world)["agent_a"]) == 1

    other = client.post(url, json={"reason": "再次督办"}, headers=headers)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["details"]
    assert _supervise(client, auth, errand, reason="进度太慢").status_code == 409
    spec = client.get("/api/openapi.json").get_json()
    parameters = spec["paths"]["/api/v1/errands/{errand_id}/supervise"]["post"]["parameters"]
    assert "Idempotency-Key" in [p["name"] for p in parameters]
