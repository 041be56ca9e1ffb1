"""What Sandan does to orders by itself, walked with a frozen clock through real RQ jobs: an urgent order
nobody dispatches is dispatched, one nobody takes is dispatched elsewhere, the deadline raises its cards;
a resolved order the resident leaves alone closes itself."""

from datetime import timedelta

import pytest
import time_machine
from redis import Redis
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.orders.models import Order
from backend.organizations.models import OrganizationCategory
from backend.supervision.models import Supervision
from tests.worker_process import run_due_jobs


@pytest.fixture
def connection(app):
    from workers import app_context

    app_context.use(app)
    yield Redis.from_url(app.config["REDIS_URL"])
    app_context.use(None)


def row(order: dict) -> Order:
    db.session.expire_all()
    return db.session.scalar(select(Order).where(Order.public_id == order["id"]))


def events(order: dict) -> list[tuple[str, str]]:
    from backend.orders.service import timeline

    return [(e.action, e.actor_role) for e in timeline(row(order))]


def test_an_urgent_order_is_dispatched_redispatched_and_escalated_by_itself(place, world, connection):
    for org in (world.organization, world.other_organization):
        org.categories.append(OrganizationCategory(category_code="emergency_help"))
    db.session.commit()
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        order = place(category="emergency_help", answers={"situation": "fall"}, description="老人在家中跌倒")
        # Half an hour to answer, around the clock; the yellow card in its last fifth.
        due, warn = start + timedelta(minutes=30), start + timedelta(minutes=24)
        assert (order["due_at"], order["warn_at"]) == (
            clock.to_local(due).isoformat(),
            clock.to_local(warn).isoformat(),
        )
        assert (row(order).due_at, row(order).warn_at) == (due, warn)
        run_due_jobs(connection)
        assert row(order).state == "submitted"

        traveller.move_to(start + timedelta(minutes=10, seconds=13))
        run_due_jobs(connection)
        first = row(order)
        first_organization = first.organization_id
        assert first.state == "dispatched" and first_organization is not None
        assert events(order)[-1] == ("dispatch", "system")

        traveller.move_to(start + timedelta(minutes=20, seconds=26))
        run_due_jobs(connection)
        second = row(order)
        assert second.state == "dispatched" and second.organization_id not in (None, first_organization)
        assert events(order)[-1] == ("redispatch", "system")

        traveller.move_to(start + timedelta(minutes=24))
        run_due_jobs(connection)
        assert ("warning", "system") in events(order)
        traveller.move_to(start + timedelta(minutes=30))
        run_due_jobs(connection)
    final = row(order)
    assert final.is_overdue and final.is_supervised
    assert events(order)[-1] == ("overdue", "system")
    assert db.session.scalar(select(Supervision.reason)) == "overdue"


def test_a_resolved_order_closes_itself_after_seven_days(place, act, world, connection):
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        order = place()
        order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
        order = act("org_admin", order, "take")
        order = act("org_admin", order, "resolve", note="已上门陪伴")
        traveller.move_to(start + timedelta(days=6, hours=23))
        run_due_jobs(connection)
        assert row(order).state == "resolved"
        traveller.move_to(start + timedelta(days=7, seconds=1))
        run_due_jobs(connection)
    assert row(order).state == "closed"
    assert events(order)[-1] == ("auto_close", "system")


def test_an_auto_close_rq_hands_over_within_its_last_second_still_closes_the_order(
    place, act, world, connection
):
    """RQ's scheduler keeps whole seconds: it may run the job up to a second before its time."""
    start = clock.now().replace(microsecond=700_000)
    with time_machine.travel(start, tick=False) as traveller:
        order = place()
        order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
        order = act("org_admin", order, "take")
        order = act("org_admin", order, "resolve", note="已上门陪伴")
        run_due_jobs(connection)
        due = start + timedelta(days=7)
        traveller.move_to(due.replace(microsecond=200_000))
        run_due_jobs(connection)
        assert row(order).state == "resolved"
        traveller.move_to(due + timedelta(seconds=1))
        run_due_jobs(connection)
    assert row(order).state == "closed"
    assert events(order)[-1] == ("auto_close", "system")


def test_an_order_confirmed_in_time_is_not_closed_twice(place, act, world, connection):
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        order = place()
        order = act("secretary_a", order, "dispatch", organization_ids=[world.organization.public_id])
        order = act("org_admin", order, "take")
        order = act("org_admin", order, "resolve", note="已上门陪伴")
        act("resident_a1", order, "confirm", level=5)
        traveller.move_to(start + timedelta(days=8))
        run_due_jobs(connection)
    assert [a for a, _ in events(order)].count("confirm") == 1
    assert "auto_close" not in [a for a, _ in events(order)]
