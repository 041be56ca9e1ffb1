"""What Sandan does to orders by itself, walked with a frozen clock through real RQ jobs: an urgent order
nobody dispatches is dispatched, one nobody takes is dispatched elsewhere (never back to an organization that
let it lapse: with nobody else left, the secretaries are told to dispatch it by hand), the deadline raises
its cards; a resolved order the resident leaves alone closes itself."""

from datetime import timedelta

import pytest
import time_machine
from redis import Redis
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.notify.models import Notification
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


def serve_urgent_orders(*organizations) -> None:
    for org in organizations:
        org.categories.append(OrganizationCategory(category_code="emergency_help"))
    db.session.commit()


def dispatches(order: dict) -> list[tuple[str, str, list[str]]]:
    """(action, by whom, to which organizations) of the order's dispatches, and where Sandan gave up."""
    from backend.orders.service import timeline

    wanted = ("dispatch", "redispatch", "auto_dispatch_failed")
    return [
        (e.action, e.actor_role, e.data.get("organizations", []))
        for e in timeline(row(order))
        if e.action in wanted
    ]


def told_nobody_took_it(world) -> int:
    return db.session.scalar(
        select(db.func.count())
        .select_from(Notification)
        .where(Notification.user_id == world.users["secretary_a"].id, Notification.title == "工单无人承接")
    )


def test_an_urgent_order_nobody_takes_is_not_sent_back_to_the_organization_that_let_it_lapse(
    client, auth, place, world, connection
):
    """With one organization able to take it, Sandan sent it back to that organization every ten minutes
    ('改派给下一个推荐的组织', a fresh 工单已派单), and the secretaries heard nothing until it was overdue."""
    serve_urgent_orders(world.organization)
    ours = world.organization.public_id
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        order = place(category="emergency_help", answers={"situation": "fall"}, description="老人在家中跌倒")
        for minutes in (10.3, 20.5, 31, 41.5):
            traveller.move_to(start + timedelta(minutes=minutes))
            run_due_jobs(connection)
    assert dispatches(order) == [
        ("dispatch", "system", [ours]),
        ("auto_dispatch_failed", "system", []),
    ]
    assert told_nobody_took_it(world) == 1
    seen = client.get(f"/api/v1/orders/{order['id']}", headers=auth("secretary_a")).get_json()
    gave_up = next(e for e in seen["timeline"] if e["action"] == "auto_dispatch_failed")
    assert gave_up["action_label"] == "转人工派单" and gave_up["by_system"]
    assert gave_up["note"] == "紧急工单无人接单，已没有其他可改派的社会组织，系统不再改派，请书记人工派单"
    # Still offered to the organization, which may yet take it, until a secretary dispatches it elsewhere.
    assert (row(order).state, row(order).organization_id) == ("dispatched", world.organization.id)


def test_a_round_of_redispatching_ends_with_everyone_it_lapsed_with_and_a_person_starts_another(
    place, act, world, connection
):
    """A reopened order lapses with the organization that did the work, then with the next one: neither
    gets it again from Sandan. A secretary's own dispatch starts a new round, in which only the
    organizations that let it lapse since are passed over."""
    serve_urgent_orders(world.organization, world.other_organization)
    ours, theirs = world.organization.public_id, world.other_organization.public_id
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        order = place(category="emergency_help", answers={"situation": "fall"}, description="老人在家中跌倒")
        order = act("secretary_a", order, "dispatch", organization_ids=[ours])
        order = act("org_admin", order, "take")
        order = act("org_admin", order, "resolve", note="已送医")
        order = act("resident_a1", order, "reopen", reason="还没处理好")
        for minutes in (10.3, 20.5):
            traveller.move_to(start + timedelta(minutes=minutes))
            run_due_jobs(connection)
        assert dispatches(order)[1:] == [
            ("redispatch", "system", [theirs]),
            ("auto_dispatch_failed", "system", []),
        ]
        assert told_nobody_took_it(world) == 1

        traveller.move_to(start + timedelta(minutes=21))
        act("secretary_a", order, "redispatch", organization_ids=[theirs], note="已电话联系")
        traveller.move_to(start + timedelta(minutes=31.5))
        run_due_jobs(connection)
    assert dispatches(order)[3:] == [
        ("redispatch", "secretary", [theirs]),
        ("redispatch", "system", [ours]),
    ]
    assert told_nobody_took_it(world) == 1


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
