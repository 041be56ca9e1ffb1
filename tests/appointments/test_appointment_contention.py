"""Capacity under contention, with many real concurrent HTTP requests against a threaded server: of more
residents than places booking one occurrence at the same instant, exactly as many as there are places get
one and the rest a 409 slot_full; one resident hammering one occurrence gets one booking; a move and a
booking racing for the last place never overbook and leave every counter equal to its bookings."""

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from backend.appointments.models import Booking, OpeningSlot, SlotOccurrence
from backend.auth.roles import Role, ScopeType
from backend.db import db
from tests.appointments.conftest import TUESDAY, WEDNESDAY
from tests.factories import login_headers, make_member, send_at_once

CAPACITY = 5  # the Tuesday slot's
CONTENDERS = 16


@pytest.fixture
def residents(client, fake_wechat, world):
    people = [
        make_member(Role.RESIDENT, ScopeType.GRID, world.grid_a1.id, openid=f"openid-contender-{n}")
        for n in range(CONTENDERS)
    ]
    return [login_headers(client, fake_wechat, person) for person in people]


def _occurrence(slot, day: str) -> SlotOccurrence:
    db.session.expire_all()
    return db.session.scalar(
        select(SlotOccurrence).where(
            SlotOccurrence.slot_id == slot.id, SlotOccurrence.day == date.fromisoformat(day)
        )
    )


def _active(occurrence: SlotOccurrence) -> int:
    return db.session.scalar(
        select(func.count()).where(Booking.occurrence_id == occurrence.id, Booking.state == "booked")
    )


def test_many_residents_at_once_never_overbook(world, residents, server):
    body = {"slot_id": world.slots["tue"].public_id, "date": TUESDAY, "errand_type": "subsistence_allowance"}
    responses = send_at_once([(f"{server}/api/v1/appointments", body, h) for h in residents])

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * CAPACITY + [409] * (CONTENDERS - CAPACITY)
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"slot_full"}
    occurrence = _occurrence(world.slots["tue"], TUESDAY)
    assert occurrence.booked == CAPACITY == _active(occurrence)
    assert db.session.scalar(select(func.count()).select_from(Booking)) == CAPACITY


def test_one_resident_hammering_one_occurrence_gets_one_booking(world, auth, server):
    body = {"slot_id": world.slots["tue"].public_id, "date": TUESDAY, "errand_type": "subsistence_allowance"}
    headers = auth("resident_a1")
    # Different keys (or none): these are distinct requests, not retries of one.
    sends = [
        (f"{server}/api/v1/appointments", body, {**headers, "Idempotency-Key": uuid.uuid4().hex})
        for _ in range(6)
    ] + [(f"{server}/api/v1/appointments", body, headers) for _ in range(6)]
    responses = send_at_once(sends)

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 11
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_booked"}
    occurrence = _occurrence(world.slots["tue"], TUESDAY)
    assert occurrence.booked == 1 == _active(occurrence)


def test_retries_of_one_request_at_once_make_one_booking(world, auth, server):
    body = {"slot_id": world.slots["tue"].public_id, "date": TUESDAY, "errand_type": "subsistence_allowance"}
    headers = {**auth("resident_a1"), "Idempotency-Key": "tap-once"}
    responses = send_at_once([(f"{server}/api/v1/appointments", body, headers)] * 8)

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert _occurrence(world.slots["tue"], TUESDAY).booked == 1


def test_a_move_and_a_booking_racing_for_the_last_place(world, client, residents, server):
    """Wednesday has 3 places; 2 are taken. A resident moving in from Tuesday and another booking race for
    the last one, again and again: one wins, the other gets slot_full, and no counter drifts."""
    tue, wed = world.slots["tue"], world.slots["wed"]
    url = f"{server}/api/v1/appointments"
    for h in residents[:2]:
        response = client.post(
            url,
            json={"slot_id": wed.public_id, "date": WEDNESDAY, "errand_type": "medicine_purchase"},
            headers=h,
        )
        assert response.status_code == 201
    mover, booker = residents[2], residents[3]
    booking = client.post(
        url,
        json={"slot_id": tue.public_id, "date": TUESDAY, "errand_type": "medicine_purchase"},
        headers=mover,
    ).get_json()
    for _ in range(4):
        move = (f"{url}/{booking['id']}/move", {"slot_id": wed.public_id, "date": WEDNESDAY}, mover)
        new = (url, {"slot_id": wed.public_id, "date": WEDNESDAY, "errand_type": "medicine_purchase"}, booker)
        moved, booked = send_at_once([move, new])

        outcome = (moved.status_code, booked.status_code)
        assert outcome in ((200, 409), (409, 201)), (moved.json(), booked.json())
        loser = booked if booked.status_code == 409 else moved
        assert loser.json()["code"] == "slot_full"
        wed_occurrence, tue_occurrence = _occurrence(wed, WEDNESDAY), _occurrence(tue, TUESDAY)
        assert wed_occurrence.booked == 3 == _active(wed_occurrence)
        assert tue_occurrence.booked == _active(tue_occurrence) == (0 if moved.status_code == 200 else 1)
        # Put things back for the next round: free the place that was won.
        if moved.status_code == 200:
            back = client.post(
                f"{url}/{booking['id']}/move", json={"slot_id": tue.public_id, "date": TUESDAY}, headers=mover
            )
            assert back.status_code == 200, back.get_json()
        else:
            assert (
                client.post(f"{url}/{booked.json()['id']}/cancel", json={}, headers=booker).status_code == 200
            )

    final_wed, final_tue = _occurrence(wed, WEDNESDAY), _occurrence(tue, TUESDAY)
    assert (final_wed.booked, final_tue.booked) == (_active(final_wed), _active(final_tue)) == (2, 1)


def test_opposite_moves_at_once_do_not_deadlock(world, client, residents, server):
    """One resident moves Tuesday → Wednesday while another moves Wednesday → Tuesday: both succeed."""
    tue, wed = world.slots["tue"], world.slots["wed"]
    url = f"{server}/api/v1/appointments"
    first = client.post(
        url,
        json={"slot_id": tue.public_id, "date": TUESDAY, "errand_type": "medicine_purchase"},
        headers=residents[0],
    ).get_json()
    second = client.post(
        url,
        json={"slot_id": wed.public_id, "date": WEDNESDAY, "errand_type": "medicine_purchase"},
        headers=residents[1],
    ).get_json()
    for round_ in range(4):
        there, back = (
            ((wed, WEDNESDAY), (tue, TUESDAY)) if round_ % 2 == 0 else ((tue, TUESDAY), (wed, WEDNESDAY))
        )
        responses = send_at_once(
            [
                (
                    f"{url}/{first['id']}/move",
                    {"slot_id": there[0].public_id, "date": there[1]},
                    residents[0],
                ),
                (f"{url}/{second['id']}/move", {"slot_id": back[0].public_id, "date": back[1]}, residents[1]),
            ]
        )
        assert [r.status_code for r in responses] == [200, 200], [r.json() for r in responses]
        assert _occurrence(tue, TUESDAY).booked == 1 == _active(_occurrence(tue, TUESDAY))
        assert _occurrence(wed, WEDNESDAY).booked == 1 == _active(_occurrence(wed, WEDNESDAY))


def test_one_slot_added_several_times_at_once_is_added_once(world, auth, server):
    """Slots of one weekday may not overlap, or the window's places would count twice: a secretary's double
    tap (or two managers at once) adds the slot once, the others get the overlap's 422."""
    url = f"{server}/api/v1/service-points/{world.point.public_id}/slots"
    for weekday in (4, 5, 7):  # days the point has no slot yet
        body = {"weekday": weekday, "start": "09:00", "end": "10:00", "capacity": 3}
        responses = send_at_once([(url, body, auth("secretary_a"))] * 5)
        assert sorted(r.status_code for r in responses) == [201] + [422] * 4, [r.json() for r in responses]
        db.session.expire_all()
        added = db.session.scalar(
            select(func.count()).where(OpeningSlot.point_id == world.point.id, OpeningSlot.weekday == weekday)
        )
        assert added == 1
