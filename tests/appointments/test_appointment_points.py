"""Service points and their weekly slots: who may open and change them, what bad input is refused, and what
anyone may read."""

from datetime import date

from sqlalchemy import select

from backend.appointments import service
from backend.appointments.models import SlotOccurrence
from backend.db import db
from tests.appointments.conftest import TUESDAY
from tests.errands.errand_helpers import ELDERLY_ALLOWANCE

POINT = {"name": "阳光社区第二代办点", "address": "阳光社区文化站", "errand_types": ["medicine_purchase"]}


def test_a_secretary_opens_a_point_in_their_community_once_per_key(client, auth, world):
    headers = {**auth("secretary_a"), "Idempotency-Key": "point-1"}
    body = {**POINT, "community_id": world.community_a.public_id}
    first = client.post("/api/v1/service-points", json=body, headers=headers)
    again = client.post("/api/v1/service-points", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    point = first.get_json()
    assert point["id"].startswith("sp_") and point["community"]["name"] == "阳光社区"
    assert point["level_label"] == "社区服务点"
    assert point["errand_types"] == [{"code": "medicine_purchase", "label": "代购药品"}]
    assert point["booking_days_ahead"] == 14 and point["slots"] == []


def test_only_the_communitys_secretary_or_the_street_manages_a_point(client, auth, world):
    body = {**POINT, "community_id": world.community_a.public_id}
    refused = client.post("/api/v1/service-points", json=body, headers=auth("secretary_b"))
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_point_manager"
    street_level = client.post("/api/v1/service-points", json=POINT, headers=auth("secretary_a"))
    assert street_level.status_code == 403
    assert client.post("/api/v1/service-points", json=body, headers=auth("resident_a1")).status_code == 403
    assert (
        client.post("/api/v1/service-points", json=body, headers=auth("other_street_admin")).status_code
        == 403
    )

    by_admin = client.post("/api/v1/service-points", json=POINT, headers=auth("street_admin"))
    assert by_admin.status_code == 201 and by_admin.get_json()["community"] is None
    assert by_admin.get_json()["level_label"] == "街道服务点"

    url = f"/api/v1/service-points/{world.point.public_id}"
    assert client.patch(url, json={"name": "新名称"}, headers=auth("secretary_b")).status_code == 403
    renamed = client.patch(url, json={"name": "新名称"}, headers=auth("street_admin"))
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "新名称"
    slot = {"weekday": 4, "start": "09:00", "end": "10:00", "capacity": 2}
    assert client.post(f"{url}/slots", json=slot, headers=auth("secretary_b")).status_code == 403


def test_bad_input_is_refused_by_field(client, auth, world):
    response = client.post(
        "/api/v1/service-points",
        json={"address": "x", "errand_types": ["Bad Code"], "booking_days_ahead": 0},
        headers=auth("street_admin"),
    )
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert {"name", "address", "errand_types", "booking_days_ahead"} <= set(details)
    unknown = client.post(
        "/api/v1/service-points",
        json={**POINT, "errand_types": ["pet_walking"]},
        headers=auth("street_admin"),
    )
    assert unknown.status_code == 422 and "pet_walking" in unknown.get_json()["details"]["errand_types"][0]

    url = f"/api/v1/service-points/{world.point.public_id}/slots"
    for body, field in (
        ({"weekday": 8, "start": "09:00", "end": "10:00", "capacity": 2}, "weekday"),
        ({"weekday": 1, "start": "9am", "end": "10:00", "capacity": 2}, "start"),
        ({"weekday": 1, "start": "10:00", "end": "09:00", "capacity": 2}, "end"),
        ({"weekday": 1, "start": "09:00", "end": "10:00", "capacity": 0}, "capacity"),
        ({"weekday": 2, "start": "10:30", "end": "12:00", "capacity": 2}, "start"),  # overlaps Tue 09–11
    ):
        response = client.post(url, json=body, headers=auth("secretary_a"))
        assert response.status_code == 422, body
        assert field in response.get_json()["details"], response.get_json()
    assert client.post(url, json=[1, 2], headers=auth("secretary_a")).status_code == 422
    bad_id = client.post(
        "/api/v1/service-points", json={**POINT, "community_id": "c_nope"}, headers=auth("street_admin")
    )
    assert bad_id.status_code == 422 and "community_id" in bad_id.get_json()["details"]


def test_slots_are_added_once_per_key_and_shown_with_labels(client, auth, world):
    url = f"/api/v1/service-points/{world.point.public_id}/slots"
    headers = {**auth("secretary_a"), "Idempotency-Key": "slot-1"}
    body = {"weekday": 5, "start": "14:00", "end": "16:30", "capacity": 4}
    first = client.post(url, json=body, headers=headers).get_json()
    assert client.post(url, json=body, headers=headers).get_json()["id"] == first["id"]
    assert first == {
        "id": first["id"],
        "weekday": 5,
        "weekday_label": "周五",
        "start": "14:00",
        "end": "16:30",
        "capacity": 4,
        "active": True,
    }
    point = client.get(f"/api/v1/service-points/{world.point.public_id}").get_json()
    assert [(s["weekday_label"], s["start"]) for s in point["slots"]] == [
        ("周二", "09:00"),
        ("周三", "14:00"),
        ("周五", "14:00"),
        ("周六", "09:00"),
    ]


def test_points_are_listed_publicly_by_community_and_errand(client, world):
    serving_a = client.get(f"/api/v1/service-points?community_id={world.community_a.public_id}").get_json()
    assert {p["name"] for p in serving_a["items"]} == {"阳光社区党群服务中心代办窗口", "幸福街道便民服务中心"}
    disability = client.get("/api/v1/service-points?errand_type=disability_certificate").get_json()
    assert [p["name"] for p in disability["items"]] == ["幸福街道便民服务中心"]
    page = client.get("/api/v1/service-points?limit=2").get_json()
    rest = client.get(f"/api/v1/service-points?limit=2&cursor={page['next_cursor']}").get_json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert client.get("/api/v1/service-points?limit=0").status_code == 422
    assert client.get("/api/v1/service-points/sp_missing").status_code == 404


def test_changing_a_slots_places_reaches_dates_not_begun_and_closing_it_keeps_bookings(
    client, auth, world, book
):
    booking = book()
    url = f"/api/v1/service-points/{world.point.public_id}/slots/{world.slots['tue'].public_id}"
    changed = client.patch(url, json={"capacity": 8}, headers=auth("secretary_a"))
    assert changed.status_code == 200 and changed.get_json()["capacity"] == 8
    occurrence = db.session.scalar(
        select(SlotOccurrence).where(SlotOccurrence.day == date.fromisoformat(TUESDAY))
    )
    db.session.refresh(occurrence)
    assert (occurrence.capacity, occurrence.booked) == (8, 1)

    closed = client.patch(url, json={"active": False}, headers=auth("secretary_a"))
    assert closed.status_code == 200 and closed.get_json()["active"] is False
    availability = client.get(f"/api/v1/service-points/{world.point.public_id}/availability").get_json()
    assert world.slots["tue"].public_id not in {i["slot_id"] for i in availability["items"]}
    assert (
        client.get(f"/api/v1/appointments/{booking['id']}", headers=auth("resident_a1")).get_json()["state"]
        == "booked"
    )
    refused = book(person="resident_a1", date="2026-10-13", expect=422)
    assert refused["code"] == "slot_closed"
    other_point_slot = client.patch(
        f"/api/v1/service-points/{world.point_b.public_id}/slots/{world.slots['tue'].public_id}",
        json={"capacity": 2},
        headers=auth("street_admin"),
    )
    assert other_point_slot.status_code == 404
    assert service.get_point(world.point.public_id).slots[0].capacity == 8


def test_a_point_names_errand_types_as_the_errands_domain_does_new_and_renamed_ones_too(client, auth, world):
    definition = ELDERLY_ALLOWANCE
    admin = auth("street_admin")
    made = client.post(
        "/api/v1/errand-types", json={"code": "elderly_allowance", "definition": definition}, headers=admin
    )
    assert made.status_code == 201, made.get_json()
    opened = client.post(
        "/api/v1/service-points",
        json={**POINT, "errand_types": ["elderly_allowance", "medicine_purchase"]},
        headers=admin,
    )
    assert opened.status_code == 201, opened.get_json()
    url = f"/api/v1/service-points/{opened.get_json()['id']}"
    assert client.get(url).get_json()["errand_types"] == [
        {"code": "elderly_allowance", "label": "高龄津贴申领"},
        {"code": "medicine_purchase", "label": "代购药品"},
    ]

    renamed = client.post(
        "/api/v1/errand-types/elderly_allowance/versions",
        json={"definition": {**definition, "name": "高龄津贴"}},
        headers=admin,
    )
    assert renamed.status_code == 201, renamed.get_json()
    assert client.get(url).get_json()["errand_types"][0] == {"code": "elderly_allowance", "label": "高龄津贴"}
