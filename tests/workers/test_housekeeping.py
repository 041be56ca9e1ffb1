"""The daily housekeeping job removes outbox messages done a week ago and Idempotency-Keys of a week ago,
and nothing younger."""

from datetime import timedelta

from sqlalchemy import func, select

from backend import clock
from backend.db import db
from backend.idempotency import IdempotentRequest
from backend.outbox import service as outbox
from backend.outbox.models import OutboxMessage
from workers.housekeeping import purge_bookkeeping


def test_the_job_purges_old_bookkeeping_rows(world, in_worker):
    user_id = world.users["resident_a1"].id
    for days in (8, 2):
        message = outbox.record(job="orders.announce_placed", args={"order_id": 1})
        message.sent_at = message.done_at = clock.now() - timedelta(days=days)
        db.session.add(
            IdempotentRequest(
                user_id=user_id,
                endpoint="orders",
                key=f"key-{days}",
                request_hash="0" * 64,
                resource_id=1,
                created_at=clock.now() - timedelta(days=days),
            )
        )
    db.session.commit()

    assert purge_bookkeeping() == {"outbox_messages": 1, "idempotency_keys": 1}
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert db.session.scalars(select(IdempotentRequest.key)).all() == ["key-2"]
