"""A real worker process raises an SLA card at its deadline through RQ's scheduler, on the real clock."""

from datetime import timedelta

from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.sla import clocks
from backend.sla.calendar import Unit
from backend.sla.models import SlaClock
from backend.sla.rules import Limit
from backend.sla.service import seed_official_calendar
from backend.supervision.models import Supervision
from tests.worker_process import running_worker, wait_for


def test_a_real_worker_raises_the_red_card_when_the_deadline_comes(app, world):
    seed_official_calendar()
    # An hour-long limit started 59 min 57 s ago: due in three seconds, counted around the clock.
    started = clock.now() - timedelta(hours=1) + timedelta(seconds=3)
    sla_clock = clocks.start(
        subject_type="test_item",
        subject_id=7,
        name="complete",
        limit=Limit(1, Unit.HOURS),
        community_id=world.community_a.id,
        at=started,
    )
    db.session.commit()
    with running_worker(app):

        def raised():
            db.session.expire_all()
            return db.session.get(SlaClock, sla_clock.id).overdue_at

        overdue_at = wait_for(raised, timeout=60, what="the red card")
    assert overdue_at >= sla_clock.due_at
    assert (
        db.session.scalar(select(Supervision.reason).where(Supervision.clock_id == sla_clock.id)) == "overdue"
    )
