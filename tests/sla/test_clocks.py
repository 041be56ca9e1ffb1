"""SLA clocks: deadlines on start, pauses and extensions, yellow and red cards raised once by real RQ jobs,
and the sweep that rebuilds what a flushed Redis lost."""

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from redis import Redis
from sqlalchemy import func, select

from backend.db import db
from backend.errors import Conflict
from backend.notify import service as notify
from backend.notify.models import Notification
from backend.outbox.models import OutboxMessage
from backend.sla import clocks, subjects
from backend.sla.calendar import Unit
from backend.sla.models import SlaClock
from backend.sla.rules import DEFAULT_POLICIES, Limit
from backend.sla.service import seed_official_calendar
from backend.supervision.models import Supervision
from tests.sla.calendar_data import local
from tests.worker_process import run_due_jobs
from workers import app_context

# A tracked item of the tests' own, named like an order so the red card goes out as a WeChat message.
ITEM = subjects.register(
    subjects.SubjectType(
        name="test_item",
        label="测试事项",
        describe=lambda subject_id: subjects.Description(
            f"楼道灯维修{subject_id}", f"T{subject_id:06d}", "pages/x"
        ),
        overdue_event="order_overdue",
    )
)


@pytest.fixture
def connection(app):
    return Redis.from_url(app.config["REDIS_URL"])


@pytest.fixture(autouse=True)
def in_process_jobs(app):
    app_context.use(app)
    seed_official_calendar()
    notify.seed_templates()
    db.session.commit()
    yield
    app_context.use(None)


def start(world, limit: Limit, subject_id: int = 1, **kwargs) -> SlaClock:
    clock = clocks.start(
        subject_type="test_item",
        subject_id=subject_id,
        name="complete",
        limit=limit,
        community_id=world.community_a.id,
        **kwargs,
    )
    db.session.commit()
    return clock


def card_state(clock: SlaClock) -> tuple[bool, bool]:
    db.session.expire_all()
    fresh = db.session.get(SlaClock, clock.id)
    return fresh.warned_at is not None, fresh.overdue_at is not None


def inbox(user, event: str) -> int:
    return db.session.scalar(
        select(func.count()).where(Notification.user_id == user.id, Notification.event == event)
    )


def template_id(event: str) -> str:
    return next(t.template_id for t in notify.list_templates() if t.event == event)


def test_a_daily_and_an_urgent_item_walk_through_warning_and_overdue_across_national_day(
    world, connection, fake_wechat
):
    secretary, street_admin = world.users["secretary_a"], world.users["street_admin"]
    # The secretary allowed one overdue message in the mini-program; the street admin allowed none.
    notify.record_subscriptions(user=secretary, results={template_id("order_overdue"): "accept"})
    db.session.commit()

    with time_machine.travel(local(2026, 9, 29, 10), tick=False) as traveller:
        daily = start(world, DEFAULT_POLICIES["daily"].complete, subject_id=1)
        # From Tuesday 29th: Wed 30, (1–7 October off), Thu 8, Fri 9, Sat 10 (make-up workday), Mon 12.
        assert daily.due_at == local(2026, 10, 12, 10)
        # One working day before is the make-up Saturday.
        assert daily.warn_at == local(2026, 10, 10, 10)
        run_due_jobs(connection)

        traveller.move_to(local(2026, 10, 1, 2))
        urgent = start(world, DEFAULT_POLICIES["urgent"].accept, subject_id=2)
        assert (urgent.warn_at, urgent.due_at) == (local(2026, 10, 1, 2, 24), local(2026, 10, 1, 2, 30))
        run_due_jobs(connection)
        assert card_state(urgent) == (False, False)

        traveller.move_to(local(2026, 10, 1, 2, 23, 59))
        run_due_jobs(connection)
        assert card_state(urgent) == (False, False)
        traveller.move_to(local(2026, 10, 1, 2, 24))
        run_due_jobs(connection)
        assert card_state(urgent) == (True, False)
        traveller.move_to(local(2026, 10, 1, 2, 30))
        run_due_jobs(connection)
        assert card_state(urgent) == (True, True)
        # The holiday week passes without a card for the daily item.
        traveller.move_to(local(2026, 10, 10, 9, 59))
        run_due_jobs(connection)
        assert card_state(daily) == (False, False)
        traveller.move_to(local(2026, 10, 10, 10))
        run_due_jobs(connection)
        assert card_state(daily) == (True, False)
        traveller.move_to(local(2026, 10, 12, 9, 59))  # Sunday the 11th is a rest day
        run_due_jobs(connection)
        assert card_state(daily) == (True, False)
        traveller.move_to(local(2026, 10, 12, 10))
        run_due_jobs(connection)
        assert card_state(daily) == (True, True)
        # Running everything again changes nothing.
        run_due_jobs(connection)
        assert clocks.sweep(connection=connection).overdue == 0

    records = db.session.scalars(select(Supervision).order_by(Supervision.id)).all()
    assert [(r.subject_id, r.reason, r.status) for r in records] == [
        (2, "overdue", "open"),
        (1, "overdue", "open"),
    ]
    assert records[0].title == "楼道灯维修2（T000002）"  # named by its number too
    # No organization holds them: the secretary hears of both yellow cards; the red cards reach the secretary
    # and the street admin (inbox), and WeChat once, for the one grant the secretary gave.
    assert inbox(secretary, "sla_warning") == 2
    assert inbox(secretary, "order_overdue") == 2 and inbox(street_admin, "order_overdue") == 2
    sent = fake_wechat.state.messages(touser=secretary.openid)
    assert len(sent) == 1 and sent[0]["template_id"] == template_id("order_overdue")
    assert fake_wechat.state.messages(touser=street_admin.openid) == []


def test_pause_holds_the_cards_and_resume_moves_the_deadline(world, connection):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:  # Monday
        clock = start(world, Limit(3, Unit.WORKING_DAYS))
        assert clock.due_at == local(2026, 11, 26, 10)
        traveller.move_to(local(2026, 11, 24, 10))
        clocks.pause(clock=clock)
        db.session.commit()
        assert clock.due_at is None and clock.state == "paused"
        # The old jobs come due while paused and do nothing.
        traveller.move_to(local(2026, 11, 26, 10))
        run_due_jobs(connection)
        assert card_state(clock) == (False, False)
        # Two working days waiting on the resident push the due time back two working days.
        clocks.resume(clock=clock)
        db.session.commit()
        assert clock.due_at == local(2026, 11, 30, 10)
        run_due_jobs(connection)
        assert card_state(clock) == (False, False)
        traveller.move_to(local(2026, 11, 27, 10))
        run_due_jobs(connection)
        assert card_state(clock) == (True, False)
        traveller.move_to(local(2026, 11, 30, 10))
        run_due_jobs(connection)
        assert card_state(clock) == (True, True)


def test_one_extension_within_the_policy_and_a_fresh_warning_before_the_new_deadline(world, connection):
    allowed = DEFAULT_POLICIES["daily"].extension
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(2, Unit.WORKING_DAYS))
        traveller.move_to(local(2026, 11, 24, 10))
        run_due_jobs(connection)
        assert card_state(clock) == (True, False)
        with pytest.raises(Conflict):
            clocks.extend(clock=clock, limit=Limit(11, Unit.WORKING_DAYS), allowed=allowed)
        clocks.extend(clock=clock, limit=Limit(3, Unit.WORKING_DAYS), allowed=allowed)
        db.session.commit()
        assert clock.due_at == local(2026, 11, 30, 10) and clock.warned_at is None
        with pytest.raises(Conflict):
            clocks.extend(clock=clock, limit=Limit(1, Unit.WORKING_DAYS), allowed=allowed)
        traveller.move_to(local(2026, 11, 25, 10))
        run_due_jobs(connection)  # the first overdue job is stale now
        assert card_state(clock) == (False, False)
        traveller.move_to(local(2026, 11, 27, 10))
        run_due_jobs(connection)
        assert card_state(clock) == (True, False)


def test_urgent_items_cannot_be_extended(world):
    clock = start(world, DEFAULT_POLICIES["urgent"].complete)
    with pytest.raises(Conflict) as refused:
        clocks.extend(clock=clock, limit=Limit(1, Unit.HOURS), allowed=DEFAULT_POLICIES["urgent"].extension)
    assert refused.value.details == {"extension": "not_allowed"}


def test_stopping_in_time_records_on_time_and_silences_the_cards(world, connection):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(1, Unit.WORKING_DAYS))
        traveller.move_to(local(2026, 11, 23, 15))
        clocks.stop(clock=clock)
        db.session.commit()
        traveller.move_to(local(2026, 11, 25, 10))
        run_due_jobs(connection)
    assert clock.on_time is True and card_state(clock) == (False, False)
    assert db.session.scalar(select(func.count()).select_from(Supervision)) == 0


def test_a_card_job_run_twice_or_stale_changes_nothing(world):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(1, Unit.WORKING_HOURS))
        traveller.move_to(local(2026, 11, 23, 11))
        stale = clock.generation - 1
        assert clocks.raise_overdue(clock_id=clock.id, generation=stale) is False
        assert clocks.raise_overdue(clock_id=clock.id, generation=clock.generation) is True
        db.session.commit()
        assert clocks.raise_overdue(clock_id=clock.id, generation=clock.generation) is False
        db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Supervision)) == 1


def test_a_flushed_redis_still_warns_on_time(world, connection):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(2, Unit.WORKING_DAYS))
        run_due_jobs(connection)
        assert connection.zcard("rq:scheduled:high") == 2
        connection.flushdb()
        # Far from the warning, the sweep leaves the lost jobs alone: it only checks what is due soon.
        assert clocks.sweep(connection=connection).resent == 0
        traveller.move_to(clock.warn_at - timedelta(minutes=2))
        result = clocks.sweep(connection=connection)
        assert (result.resent, result.warnings) == (1, 0)
        run_due_jobs(connection)
        assert card_state(clock) == (False, False)
        traveller.move_to(clock.warn_at)
        run_due_jobs(connection)
        assert card_state(clock) == (True, False)


def test_the_sweep_raises_a_card_whose_job_never_came(world, connection):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(1, Unit.WORKING_HOURS))
        # The relay never ran (Redis was down all along) and the deadline passed.
        traveller.move_to(local(2026, 11, 23, 11, 5))
        db.session.execute(OutboxMessage.__table__.delete())
        db.session.commit()
        result = clocks.sweep(connection=connection)
    assert (result.warnings, result.overdue) == (0, 1)
    assert card_state(clock) == (False, True)


def _overdue_clock(world, *, community, organization=None, subject_id: int, at: datetime):
    clock = clocks.start(
        subject_type="test_item",
        subject_id=subject_id,
        name="complete",
        limit=Limit(1, Unit.HOURS),
        community_id=community.id,
        organization_id=organization.id if organization else None,
        at=at,
    )
    db.session.flush()
    clocks.raise_overdue(clock_id=clock.id, now=at + timedelta(hours=2))
    return clock


def test_overdue_counts_per_community_and_organization_within_the_callers_scope(world, client, auth):
    at = local(2026, 11, 2, 10)
    _overdue_clock(world, community=world.community_a, organization=world.organization, subject_id=1, at=at)
    closed = _overdue_clock(world, community=world.community_a, subject_id=2, at=at)
    clocks.stop(clock=closed, at=at + timedelta(hours=3))
    _overdue_clock(world, community=world.community_b, subject_id=3, at=at)
    db.session.commit()

    response = client.get("/api/v1/sla/overdue", headers=auth("street_admin"))
    assert response.status_code == 200
    counts = {i["name"]: (i["open_overdue"], i["overdue_in_period"]) for i in response.get_json()["items"]}
    assert counts == {"阳光社区": (1, 2), "和平社区": (1, 1)}

    response = client.get("/api/v1/sla/overdue", headers=auth("secretary_a"))
    assert [i["name"] for i in response.get_json()["items"]] == ["阳光社区"]

    response = client.get("/api/v1/sla/overdue?group_by=organization", headers=auth("street_admin"))
    assert response.get_json()["items"] == [
        {
            "id": world.organization.public_id,
            "name": world.organization.name,
            "open_overdue": 1,
            "overdue_in_period": 1,
        }
    ]
    response = client.get(
        "/api/v1/sla/overdue?since=2026-12-01T00:00:00%2B08:00", headers=auth("street_admin")
    )
    assert {i["name"]: i["overdue_in_period"] for i in response.get_json()["items"]} == {
        "阳光社区": 0,
        "和平社区": 0,
    }

    assert client.get("/api/v1/sla/overdue", headers=auth("org_admin")).status_code == 403
    assert client.get("/api/v1/sla/overdue?group_by=grid", headers=auth("street_admin")).status_code == 422


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "0001-01-01T00:00:00+08:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-08:00"}, "until"),
        ({"since": "1999-12-31T23:00:00+08:00"}, "since"),
        ({"until": "soon"}, "until"),
    ],
)
def test_overdue_counts_refuse_times_out_of_range_by_field(client, auth, query, field):
    # Times near datetime's limits cannot be turned into UTC for the query: a 422, not a 500.
    response = client.get("/api/v1/sla/overdue", query_string=query, headers=auth("street_admin"))
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["details"]) == [field]


def test_a_clock_past_its_deadline_cannot_be_extended_before_its_red_card_comes(world):
    allowed = DEFAULT_POLICIES["daily"].extension
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(1, Unit.WORKING_DAYS))
        # The deadline passed a minute ago; the overdue job has not run yet (Redis down, or just late).
        traveller.move_to(local(2026, 11, 24, 10, 1))
        with pytest.raises(Conflict) as refused:
            clocks.extend(clock=clock, limit=Limit(3, Unit.WORKING_DAYS), allowed=allowed)
        assert refused.value.details == {"due_at": clock.due_at.isoformat()}
        db.session.rollback()
        assert clocks.raise_overdue(clock_id=clock.id) is True


@pytest.mark.parametrize(
    ("wanted", "allowed"),
    [
        (Limit(24, Unit.HOURS), Limit(24, Unit.HOURS)),
        (Limit("2.5", Unit.WORKING_HOURS), Limit(4, Unit.WORKING_HOURS)),
    ],
)
def test_an_extension_in_another_unit_than_the_clocks_is_refused(world, wanted, allowed):
    # A policy changed after the clock started may allow extensions in another unit; added to the clock's
    # own amount they would count 24 hours as 24 working days, or 2.5 working hours as half a working day.
    with time_machine.travel(local(2026, 11, 23, 10), tick=False):
        clock = start(world, Limit(2, Unit.WORKING_DAYS))
        due = clock.due_at
        with pytest.raises(Conflict) as refused:
            clocks.extend(clock=clock, limit=wanted, allowed=allowed)
    assert refused.value.details == {"extension": "unit"}
    assert clock.due_at == due and clock.extension_amount is None


def test_a_card_another_process_raised_is_seen_by_a_session_already_holding_the_clock(world):
    # The sweep's session may hold a clock already (a hook of an earlier card loaded it) when that clock's
    # own job raises its card in another process: the lock must read the row as it is now.
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(1, Unit.WORKING_HOURS))
        traveller.move_to(local(2026, 11, 23, 11, 5))
        assert clock.overdue_at is None  # loaded into this session
        engine = sa.create_engine(db.engine.url)
        try:
            with engine.begin() as other:
                other.execute(
                    sa.update(SlaClock)
                    .where(SlaClock.id == clock.id)
                    .values(overdue_at=local(2026, 11, 23, 11))
                )
        finally:
            engine.dispose()
        assert clocks.raise_overdue(clock_id=clock.id) is False
        db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Supervision)) == 0


def test_a_clock_paused_after_its_deadline_still_gets_its_red_card(world, connection):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        clock = start(world, Limit(1, Unit.WORKING_HOURS))
        run_due_jobs(connection)
        # The deadline passed ten seconds ago; before the overdue job ran, the item waits on the resident.
        traveller.move_to(local(2026, 11, 23, 11, 0, 10))
        clocks.pause(clock=clock)
        db.session.commit()
        # The pause came after the time limit ran out: it changes nothing, the card is still owed.
        assert clock.due_at == local(2026, 11, 23, 11)
        run_due_jobs(connection)
        assert card_state(clock) == (False, True)
    assert db.session.scalar(select(func.count()).select_from(Supervision)) == 1


def _refuse_subject_13(clock) -> None:
    if clock.subject_id == 13:
        raise RuntimeError("a hook that fails for this one item")


BROKEN_HOOK = subjects.register(
    subjects.SubjectType(
        name="test_item_with_a_broken_hook",
        label="测试事项",
        describe=lambda subject_id: subjects.Description(
            f"事项{subject_id}", f"B{subject_id:06d}", "pages/x"
        ),
        on_overdue=_refuse_subject_13,
    )
)


def test_one_clock_whose_card_fails_does_not_hold_up_the_sweep(world, connection, caplog):
    with time_machine.travel(local(2026, 11, 23, 10), tick=False) as traveller:
        # The failing clock falls due first, so it leads every batch the sweep reads.
        started = [
            clocks.start(
                subject_type=BROKEN_HOOK.name,
                subject_id=subject_id,
                name="complete",
                limit=Limit(hours, Unit.HOURS),
                community_id=world.community_a.id,
            )
            for subject_id, hours in ((13, 1), (14, 2), (15, 3))
        ]
        db.session.commit()
        traveller.move_to(local(2026, 11, 23, 13, 30))
        db.session.execute(OutboxMessage.__table__.delete())
        db.session.commit()
        result = clocks.sweep(connection=connection, batch=2)
    assert result.overdue == 2
    db.session.expire_all()
    assert [c.overdue_at is not None for c in started] == [False, True, True]
    assert "clock" in caplog.text and "a hook that fails for this one item" in caplog.text
