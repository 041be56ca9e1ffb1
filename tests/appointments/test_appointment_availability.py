"""What is offered: the slots of each day within the booking window, none on official holidays (listed as
closed), make-up workdays by their own weekday, nothing already begun; places left after bookings."""

from datetime import datetime

from backend.clock import LOCAL_TZ
from tests.appointments.conftest import SATURDAY, TUESDAY, WEDNESDAY


def _availability(client, world, query="", headers=None):
    response = client.get(
        f"/api/v1/service-points/{world.point.public_id}/availability{query}", headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_window_skips_holidays_and_opens_the_make_up_saturday(client, world):
    result = _availability(client, world)

    offered = [(i["date"], i["weekday_label"], i["starts_at"]) for i in result["items"]]
    # Monday 09-28 has no slot; 10-01..10-07 are National Day (Tue 10-06 and Wed 10-07 closed, and Saturday
    # 10-03); Saturday 10-10 is a make-up workday and opens its Saturday slot; 10-12 on is past the window.
    assert offered == [
        (TUESDAY, "周二", "2026-09-29T09:00:00+08:00"),
        (WEDNESDAY, "周三", "2026-09-30T14:00:00+08:00"),
        (SATURDAY, "周六", "2026-10-10T09:00:00+08:00"),
    ]
    assert result["closed_days"] == [
        {"date": "2026-10-03", "reason": "法定节假日"},
        {"date": "2026-10-06", "reason": "法定节假日"},
        {"date": "2026-10-07", "reason": "法定节假日"},
    ]
    first = result["items"][0]
    assert first["ends_at"] == "2026-09-29T11:00:00+08:00"
    assert (first["capacity"], first["booked"], first["remaining"], first["available"]) == (5, 0, 5, True)


def test_places_left_follow_bookings_and_a_full_slot_shows_none(client, world, book):
    book(person="resident_a1", slot="sat", date=SATURDAY)
    result = _availability(client, world, f"?from={SATURDAY}&to={SATURDAY}")
    assert [(i["booked"], i["remaining"]) for i in result["items"]] == [(1, 1)]


def test_a_slot_that_has_begun_is_not_offered(client, world, frozen):
    frozen.move_to(datetime(2026, 9, 29, 9, 30, tzinfo=LOCAL_TZ))
    result = _availability(client, world, f"?from={TUESDAY}&to={WEDNESDAY}")
    assert [i["date"] for i in result["items"]] == [WEDNESDAY]


def test_bad_ranges_are_refused_by_field(client, world):
    url = f"/api/v1/service-points/{world.point.public_id}/availability"
    assert "to" in client.get(f"{url}?from=2026-10-05&to=2026-10-01").get_json()["details"]
    assert "to" in client.get(f"{url}?from=2026-09-28&to=2026-11-28").get_json()["details"]
    bad = client.get(f"{url}?from=yesterday")
    assert bad.status_code == 422 and "from" in bad.get_json()["details"]
    assert client.get("/api/v1/service-points/sp_missing/availability").status_code == 404


def test_a_closed_point_offers_nothing(client, auth, world):
    client.patch(
        f"/api/v1/service-points/{world.point.public_id}", json={"active": False}, headers=auth("secretary_a")
    )
    assert _availability(client, world)["items"] == []
