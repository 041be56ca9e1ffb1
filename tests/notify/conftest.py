"""Notification fixtures: shipped templates seeded, jobs run in-process through the worker's entry point."""

import pytest
from sqlalchemy import or_, select

from backend import clock
from backend.db import db
from backend.notify import service
from backend.notify.models import NotificationTemplate
from backend.outbox.models import OutboxMessage
from workers import app_context
from workers.outbox import run_message


@pytest.fixture(autouse=True)
def templates(app):
    """The shipped templates, as `sandan migrate` leaves them, by event."""
    service.seed_templates()
    return {row.event: row for row in db.session.scalars(select(NotificationTemplate))}


@pytest.fixture(autouse=True)
def in_process_jobs(app):
    app_context.use(app)
    yield
    app_context.use(None)


@pytest.fixture
def run_due():
    """Run every outbox message due now, as a worker would (workers.outbox.run_message); return how many."""

    def run() -> int:
        db.session.commit()
        due = list(
            db.session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.done_at.is_(None),
                    or_(OutboxMessage.run_at.is_(None), OutboxMessage.run_at <= clock.now()),
                )
                .order_by(OutboxMessage.id)
            )
        )
        db.session.commit()
        for message_id in due:
            assert run_message(message_id) == "done"
        db.session.commit()  # a new transaction: the test sees what the jobs committed
        return len(due)

    return run


@pytest.fixture
def grant(templates):
    """``grant(user, "order_accepted", times=1)``: the user accepted that many one-time subscriptions."""

    def give(user, event: str, times: int = 1) -> None:
        template_id = templates[event].template_id
        for _ in range(times):
            service.record_subscriptions(user=user, results={template_id: "accept"})
            db.session.commit()

    return give
