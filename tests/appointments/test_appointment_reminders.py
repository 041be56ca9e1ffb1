"""The reminder the evening before a visit, through the outbox and real RQ jobs under a frozen clock: sent
once at 18:00 the day before; never for a booking cancelled or moved since (the moved one gets its own);
at once when booked after that moment."""

from datetime import datetime

import pytest
from redis import Redis
from sqlalchemy import select

from backend.clock import LOCAL_TZ
from backend.db import db
from backend.notify.models import Notification
from tests.appointments.conftest import TUESDAY, WEDNESDAY
from tests.factories import login_headers
from tests.worker_process import run_due_jobs


@pytest.fixture
def connection(app):
    from workers import app_context

    app_context.use(app)
    yield Redis.from_url(app.config["REDIS_URL"])
    app_context.use(None)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, minute, tzinfo=LOCAL_TZ)


def reminders() -> list[Notification]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Notification).where(Notification.event == "appointment_reminder").order_by(Notification.id)
        )
    )


def test_one_reminder_at_six_the_evening_before(book, world, frozen, connection):
    booking = book(slot="wed", date=WEDNESDAY)
    run_due_jobs(connection)
    frozen.move_to(at(29, 17, 59))
    run_due_jobs(connection)
    assert reminders() == []

    frozen.move_to(
        at(
            29,
            18,
            0,
        )
    )
    run_due_jobs(connection)
    frozen.move_to(at(29, 18, 30))
    run_due_jobs(connection)

    [sent] = reminders()
    assert sent.user_id == world.users["resident_a1"].id and sent.subject_type == "appointment"
    assert sent.fields == {
        "subject": "低保申请预约",
        "at": "2026-09-30T14:00:00+08:00",
        "place": "阳光社区党群服务中心代办窗口",
        "note": "阳光社区幸福路 8 号",
    }
    assert sent.page == f"pages/appointments/detail?id={booking['id']}"
    assert "2026年09月30日 14:00" in sent.body


def test_a_moved_booking_is_reminded_of_its_new_time_only(book, act, world, frozen, connection):
    booking = book(slot="tue", date=TUESDAY)
    act("resident_a1", booking, "move", slot_id=world.slots["wed"].public_id, date=WEDNESDAY)
    frozen.move_to(at(28, 18, 1))  # the evening before the old Tuesday visit
    run_due_jobs(connection)
    assert reminders() == []
    frozen.move_to(at(29, 18, 1))
    run_due_jobs(connection)
    assert [r.fields["at"] for r in reminders()] == ["2026-09-30T14:00:00+08:00"]


def test_a_cancelled_booking_is_not_reminded(book, act, frozen, connection):
    act("resident_a1", book(slot="wed", date=WEDNESDAY), "cancel")
    frozen.move_to(at(29, 18, 1))
    run_due_jobs(connection)
    assert reminders() == []


def test_a_booking_made_after_six_the_evening_before_is_reminded_at_once(
    client, fake_wechat, world, frozen, connection
):
    frozen.move_to(at(28, 19, 0))
    response = client.post(
        "/api/v1/appointments",
        json={"slot_id": world.slots["tue"].public_id, "date": TUESDAY, "errand_type": "medicine_purchase"},
        headers=login_headers(client, fake_wechat, world.users["resident_a1"]),
    )
    assert response.status_code == 201, response.get_json()
    run_due_jobs(connection)
    run_due_jobs(connection)
    assert [r.fields["subject"] for r in reminders()] == ["代购药品预约"]
