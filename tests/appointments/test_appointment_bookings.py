"""Booking, moving and cancelling: the rules each refusal stands on, 代约 by a secretary, who sees what, and
the calls the errands domain makes (get_booking, link_errand, mark_attended)."""

from datetime import date, datetime

import pytest
from sqlalchemy import select

from backend.appointments import service
from backend.appointments.models import SlotOccurrence
from backend.auth.roles import Role, ScopeType
from backend.clock import LOCAL_TZ
from backend.db import db
from backend.errors import Conflict, NotFound
from backend.notify.models import Notification
from tests.appointments.conftest import HOLIDAY_TUESDAY, SATURDAY, TUESDAY, WEDNESDAY
from tests.factories import login_headers, make_member


def _booked(slot, day: str) -> int:
    db.session.expire_all()
    booked = db.session.scalar(
        select(SlotOccurrence.booked).where(
            SlotOccurrence.slot_id == slot.id, SlotOccurrence.day == date.fromisoformat(day)
        )
    )
    return booked or 0


@pytest.fixture
def neighbour(world):
    """Another resident of community A (grid a2)."""
    return make_member(Role.RESIDENT, ScopeType.GRID, world.grid_a2.id, openid="openid-neighbour")


def test_a_resident_books_a_place(book, world):
    booking = book(note="带齐户口本和身份证复印件")

    assert booking["id"].startswith("ap_")
    assert booking["state"] == "booked" and booking["state_label"] == "已预约"
    assert booking["service_point"]["name"] == "阳光社区党群服务中心代办窗口"
    assert (booking["date"], booking["weekday_label"]) == (TUESDAY, "周二")
    assert booking["starts_at"] == "2026-09-29T09:00:00+08:00"
    assert booking["ends_at"] == "2026-09-29T11:00:00+08:00"
    assert booking["errand_type_label"] == "低保申请" and booking["note"] == "带齐户口本和身份证复印件"
    assert booking["by_proxy"] is False and booking["booked_by"]["role_label"] == "居民"
    assert booking["resident_id"] == world.users["resident_a1"].public_id
    assert booking["allowed_actions"] == ["move", "cancel"]
    assert _booked(world.slots["tue"], TUESDAY) == 1


def test_a_retry_with_the_same_key_returns_the_first_booking(book, world):
    first = book(headers={"Idempotency-Key": "tap"}, note="一")
    again = book(headers={"Idempotency-Key": "tap"}, note="一")
    assert again["id"] == first["id"] and _booked(world.slots["tue"], TUESDAY) == 1
    other_body = book(headers={"Idempotency-Key": "tap"}, note="二", expect=422)
    assert "Idempotency-Key" in other_body["details"]
    assert "Idempotency-Key" in book(headers={"Idempotency-Key": " "}, expect=422)["details"]


def test_one_active_booking_per_resident_and_occurrence(book, act):
    first = book()
    assert book(expect=409)["code"] == "already_booked"
    act("resident_a1", first, "cancel")
    book()  # a cancelled booking no longer counts


def test_a_full_slot_refuses_with_slot_full(book, world, neighbour):
    book(slot="sat", date=SATURDAY)
    book(person="secretary_a", slot="sat", date=SATURDAY, resident_id=neighbour.public_id)
    late = book(person="resident_a2_late", slot="sat", date=SATURDAY, expect=409)
    assert late["code"] == "slot_full" and late["message"] == "该时段已约满，请选择其他时段"
    assert late["details"] == {"remaining": 0}
    assert _booked(world.slots["sat"], SATURDAY) == 2
    # Holding no role that books: told to register where they live, as anyone new is.
    refused = book(person="grid_worker_a1", slot="sat", date=SATURDAY, expect=403)
    assert refused["code"] == "residence_required"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"date": HOLIDAY_TUESDAY}, "date", "closed_day"),
        ({"date": WEDNESDAY}, "date", "validation_failed"),  # the Tuesday slot on a Wednesday
        ({"date": "2026-10-13"}, "date", "outside_booking_window"),
        ({"date": "2026-09-22"}, "date", "outside_booking_window"),
        ({"date": "29/09/2026"}, "date", "validation_failed"),
        ({"errand_type": "disability_certificate"}, "errand_type", "validation_failed"),
        ({"errand_type": "不合法"}, "errand_type", "validation_failed"),
        ({"slot_id": "sl_missing"}, "slot_id", "validation_failed"),
        ({"note": "很长" * 300}, "note", "validation_failed"),
        ({"resident_id": "u_nobody"}, "resident_id", "validation_failed"),
    ],
)
def test_bad_bookings_are_refused_by_field(book, body, field, code):
    refused = book(expect=422, **body)
    assert field in refused["details"] and refused["code"] == code, refused


def test_missing_fields_and_a_non_object_body_are_422(client, auth):
    response = client.post("/api/v1/appointments", json={}, headers=auth("resident_a1"))
    assert response.status_code == 422
    assert {"slot_id", "date", "errand_type"} <= set(response.get_json()["details"])
    assert client.post("/api/v1/appointments", json="x", headers=auth("resident_a1")).status_code == 422


def test_a_point_serves_its_own_community_and_the_street_point_everyone(book, world):
    refused = book(person="resident_b1", expect=403)
    assert refused["code"] == "outside_service_area"
    book(person="resident_b1", slot=world.slot_b.public_id)
    book(person="resident_a1", slot=world.street_slot.public_id)


def test_a_secretary_books_for_a_resident_of_their_community(book, world, auth, client):
    resident = world.users["resident_a1"]
    booking = book(person="secretary_a", resident_id=resident.public_id, headers={"Idempotency-Key": "s-1"})
    assert booking["by_proxy"] is True and booking["resident_id"] == resident.public_id
    assert booking["booked_by"] == {
        "id": world.users["secretary_a"].public_id,
        "role": "secretary",
        "role_label": "社区书记",
    }
    mine = client.get(f"/api/v1/appointments/{booking['id']}", headers=auth("resident_a1")).get_json()
    assert mine["by_proxy"] is True and mine["allowed_actions"] == ["move", "cancel"]
    # Not for another community's resident, nor without naming one.
    other = book(person="secretary_b", resident_id=resident.public_id, expect=422)
    assert "resident_id" in other["details"]
    assert book(person="secretary_a", expect=403)["code"] == "not_a_resident"


@pytest.mark.parametrize("person", ["newcomer", "grid_worker_a1"])
def test_someone_not_registered_in_a_grid_is_told_to_register_before_booking(book, person):
    refused = book(person=person, expect=403)
    assert (refused["code"], refused["message"]) == ("residence_required", "请先登记居住的网格再预约")


def test_moving_gives_the_old_place_back_and_takes_the_new_one(book, act, world):
    booking = book(errand_type="medicine_purchase")
    moved = act("resident_a1", booking, "move", slot_id=world.slots["wed"].public_id, date=WEDNESDAY)

    assert moved["id"] == booking["id"] and moved["state"] == "booked" and moved["moved_count"] == 1
    assert moved["starts_at"] == "2026-09-30T14:00:00+08:00" and moved["weekday_label"] == "周三"
    assert (_booked(world.slots["tue"], TUESDAY), _booked(world.slots["wed"], WEDNESDAY)) == (0, 1)
    # A secretary moves it for the resident, here to the street's point.
    act("secretary_a", moved, "move", slot_id=world.street_slot.public_id, date=TUESDAY, expect=422)  # errand
    again = act("secretary_a", moved, "move", slot_id=world.slots["sat"].public_id, date=SATURDAY)
    assert again["moved_count"] == 2 and _booked(world.slots["wed"], WEDNESDAY) == 0


def test_a_move_is_refused_without_changing_anything(book, act, world, neighbour, client, auth):
    booking = book(slot="sat", date=SATURDAY)
    book(person="secretary_a", resident_id=neighbour.public_id)
    same = act(
        "resident_a1", booking, "move", slot_id=world.slots["sat"].public_id, date=SATURDAY, expect=422
    )
    assert "date" in same["details"]
    closed = act(
        "resident_a1", booking, "move", slot_id=world.slots["tue"].public_id, date=HOLIDAY_TUESDAY, expect=422
    )
    assert closed["code"] == "closed_day"
    assert act("resident_a1", booking, "move", expect=422)["details"].keys() == {"slot_id", "date"}
    # Fill Tuesday, then try to move into it.
    for n in range(4):
        extra = make_member(Role.RESIDENT, ScopeType.GRID, world.grid_a1.id, openid=f"openid-fill-{n}")
        book(person="secretary_a", resident_id=extra.public_id)
    full = act("resident_a1", booking, "move", slot_id=world.slots["tue"].public_id, date=TUESDAY, expect=409)
    assert full["code"] == "slot_full"
    after = client.get(f"/api/v1/appointments/{booking['id']}", headers=auth("resident_a1")).get_json()
    assert after["date"] == SATURDAY and after["moved_count"] == 0
    assert (_booked(world.slots["sat"], SATURDAY), _booked(world.slots["tue"], TUESDAY)) == (1, 5)


def test_cancelling_gives_the_place_back_until_the_visit_starts(
    book, act, world, frozen, client, fake_wechat
):
    booking = book(slot="wed", date=WEDNESDAY)
    cancelled = act("resident_a1", booking, "cancel", reason="临时有事")
    assert cancelled["state"] == "cancelled" and cancelled["state_label"] == "已取消"
    assert cancelled["cancel_reason"] == "临时有事" and cancelled["allowed_actions"] == []
    assert cancelled["cancelled_by"]["id"] == world.users["resident_a1"].public_id
    assert _booked(world.slots["wed"], WEDNESDAY) == 0
    again = act("resident_a1", booking, "cancel", expect=409)
    assert again["code"] == "illegal_action" and again["details"]["state"] == "cancelled"
    moved = act(
        "resident_a1", booking, "move", slot_id=world.slots["tue"].public_id, date=TUESDAY, expect=409
    )
    assert moved["code"] == "illegal_action"

    later = book(slot="wed", date=WEDNESDAY)
    frozen.move_to(datetime(2026, 9, 30, 14, 0, tzinfo=LOCAL_TZ))
    for person in ("resident_a1", "secretary_a"):  # signed in afresh: two days on, the old tokens expired
        headers = login_headers(client, fake_wechat, world.users[person])
        too_late = client.post(f"/api/v1/appointments/{later['id']}/cancel", json={}, headers=headers)
        assert too_late.status_code == 409 and too_late.get_json()["code"] == "too_late"
        assert "已开始" in too_late.get_json()["message"]
    assert _booked(world.slots["wed"], WEDNESDAY) == 1


def test_secretaries_and_street_admins_cancel_for_residents(book, act):
    first, second = book(slot="tue"), book(slot="wed", date=WEDNESDAY)
    by_secretary = act("secretary_a", first, "cancel", reason="居民电话告知")
    assert by_secretary["state"] == "cancelled"
    assert act("street_admin", second, "cancel")["state"] == "cancelled"
    # A street admin may cancel, not move.
    third = book(slot="sat", date=SATURDAY)
    assert act("street_admin", third, "move", slot_id=third["slot_id"], date=SATURDAY, expect=403)


def _notices(world, person: str) -> list[tuple[str, str]]:
    db.session.expire_all()
    found = db.session.scalars(
        select(Notification)
        .where(Notification.user_id == world.users[person].id, Notification.event == "appointment_reminder")
        .order_by(Notification.id)
    )
    return [(n.title, n.body) for n in found]


def test_the_resident_hears_when_the_community_cancels_or_moves_their_booking(book, act, world):
    # They heard nothing: a visit cancelled for them was learnt of at the counter, a moved one missed.
    first, second = book(slot="tue"), book(slot="wed", date=WEDNESDAY)
    third = book(slot="sat", date=SATURDAY)
    act("secretary_a", first, "cancel", reason="窗口临时停办")
    act("street_admin", second, "cancel")
    act("secretary_a", third, "move", slot_id=world.slots["tue"].public_id, date=TUESDAY)
    assert _notices(world, "resident_a1") == [
        (
            "预约已取消",
            "您预约的「低保申请预约」已被社区取消，如仍需办理请重新预约。\n"
            "状态：已取消\n时间：2026年09月29日 09:00\n备注：窗口临时停办\n"
            "地点：阳光社区党群服务中心代办窗口",
        ),
        (
            "预约已取消",
            "您预约的「低保申请预约」已被社区取消，如仍需办理请重新预约。\n"
            "状态：已取消\n时间：2026年09月30日 14:00\n地点：阳光社区党群服务中心代办窗口",
        ),
        (
            "预约已改期",
            "社区已将您预约的「低保申请预约」改到以下时间，请按时前往。\n"
            "状态：已改约\n时间：2026年09月29日 09:00\n备注：阳光社区幸福路 8 号\n"
            "地点：阳光社区党群服务中心代办窗口",
        ),
    ]
    # What the resident does themself they are not told of.
    act("resident_a1", third, "move", slot_id=world.slots["wed"].public_id, date=WEDNESDAY)
    act("resident_a1", third, "cancel", reason="临时有事")
    assert len(_notices(world, "resident_a1")) == 3


def test_each_role_sees_only_its_own_scope(book, client, auth, world):
    mine = book()
    theirs = book(person="resident_b1", slot=world.slot_b.public_id)
    url = "/api/v1/appointments"

    def ids(person, query=""):
        response = client.get(f"{url}{query}", headers=auth(person))
        assert response.status_code == 200, response.get_json()
        return [b["id"] for b in response.get_json()["items"]]

    assert ids("resident_a1") == [mine["id"]]
    assert ids("resident_b1") == [theirs["id"]]
    assert ids("secretary_a") == [mine["id"]]
    assert ids("secretary_b") == [theirs["id"]]
    assert ids("street_admin") == [theirs["id"], mine["id"]]
    assert ids("other_street_admin") == []
    assert ids("street_admin", f"?service_point_id={world.point.public_id}") == [mine["id"]]
    assert ids("street_admin", f"?date={TUESDAY}") == [theirs["id"], mine["id"]]
    assert ids("street_admin", "?date=2026-09-30") == []
    assert ids("street_admin", "?state=cancelled") == []
    assert client.get(f"{url}?state=lost", headers=auth("street_admin")).status_code == 422
    assert client.get(url, headers=auth("org_admin")).status_code == 403
    assert client.get(url).status_code == 401

    for person in ("resident_b1", "secretary_b", "other_street_admin", "org_admin", "grid_worker_a1"):
        response = client.get(f"{url}/{mine['id']}", headers=auth(person))
        assert response.status_code == 404, person
        assert client.post(f"{url}/{mine['id']}/cancel", json={}, headers=auth(person)).status_code in (
            403,
            404,
        )
    for person in ("resident_a1", "secretary_a", "street_admin"):
        assert client.get(f"{url}/{mine['id']}", headers=auth(person)).status_code == 200
    assert client.get(f"{url}/ap_missing", headers=auth("street_admin")).status_code == 404


def test_lists_page_by_cursor_newest_first(book, client, auth, world):
    made = [book(slot=s, date=d)["id"] for s, d in (("tue", TUESDAY), ("wed", WEDNESDAY), ("sat", SATURDAY))]
    first = client.get("/api/v1/appointments?limit=2", headers=auth("resident_a1")).get_json()
    rest = client.get(
        f"/api/v1/appointments?limit=2&cursor={first['next_cursor']}", headers=auth("resident_a1")
    )
    assert [b["id"] for b in first["items"]] + [b["id"] for b in rest.get_json()["items"]] == made[::-1]
    assert rest.get_json()["next_cursor"] is None
    bad = client.get("/api/v1/appointments?cursor=!!", headers=auth("resident_a1"))
    assert bad.status_code == 422 and "cursor" in bad.get_json()["details"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_list_filtered_to_a_day_no_visit_can_fall_on_is_422(client, auth, day):
    # The first starts before UTC's year 1; the last ends after its year 9999.
    response = client.get(f"/api/v1/appointments?date={day}", headers=auth("resident_a1"))
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["details"]) == ["date"]


def test_the_errands_domain_links_a_booking_then_marks_it_attended(book, act):
    booking = service.get_booking(book()["id"])
    linked = service.link_errand(booking, errand_id=42)
    db.session.commit()
    # Made into an errand, still to come: booked (reminded, movable), cancelled only with its errand.
    assert (linked.state, linked.errand_id, linked.attended_at) == ("booked", 42, None)
    assert act("resident_a1", {"id": booking.public_id}, "cancel", expect=409)["code"] == "appointment_used"
    # One visit, one errand: a second errand made from it (a duplicate submission, or two at once) is refused.
    with pytest.raises(Conflict) as refused:
        service.link_errand(booking, errand_id=43)
    assert refused.value.code == "appointment_used"
    db.session.rollback()
    attended = service.mark_attended(service.get_booking(booking.public_id))
    db.session.commit()
    assert (attended.state, attended.state_label, attended.errand_id) == ("attended", "已到场办理", 42)
    assert service.mark_attended(booking).state == "attended"  # idempotent
    act("resident_a1", {"id": booking.public_id}, "cancel", expect=409)

    cancelled = book(slot="wed", date=WEDNESDAY)
    act("resident_a1", cancelled, "cancel")
    with pytest.raises(Conflict):
        service.mark_attended(service.get_booking(cancelled["id"]))
    with pytest.raises(Conflict):
        service.link_errand(service.get_booking(cancelled["id"]), errand_id=44)
    with pytest.raises(NotFound):
        service.get_booking("ap_missing")
