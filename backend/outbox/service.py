"""Record side effects in the caller's transaction; relay them to RQ once committed, retrying on failure."""

import contextlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from flask import current_app
from rq import Queue, Retry
from sqlalchemy import delete, or_, select, update

from backend import clock
from backend.db import db
from backend.outbox.models import OutboxMessage, rq_job_id

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")
# Every outbox job runs through one entry point that checks and marks the message done.
RUNNER = "workers.outbox.run_message"
JOB_TIMEOUT = 120
# A worker that dies mid-job leaves it abandoned; RQ retries it while retries remain.
JOB_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
MAX_BACKOFF = timedelta(minutes=5)
# A message whose job is done is kept this long (to trace what a state change set off), then removed: its
# work lives in the rows the job wrote, and a late duplicate run finds no message and does nothing (claim).
DONE_KEPT = timedelta(days=7)
PURGE_BATCH = 1000


def record(*, job: str, args: dict | None = None, queue: str = "default", run_at: datetime | None = None):
    """Add a side effect to the current transaction; it exists only if the caller's change commits."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    message = OutboxMessage(job=job, args=args or {}, queue=queue, run_at=run_at)
    db.session.add(message)
    return message


@dataclass
class RelayResult:
    sent: int = 0
    failed: int = 0


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


def _due_batch(limit: int) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= clock.now())
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if db.engine.dialect.name == "postgresql":
        # Two relays never take the same rows; each moves its own batch.
        query = query.with_for_update(skip_locked=True)
    return list(db.session.scalars(query))


def _retry() -> Retry:
    """JOB_RETRY, unless SANDAN_JOB_RETRY_INTERVALS sets other intervals (one retry per entry)."""
    intervals = current_app.config.get("JOB_RETRY_INTERVALS")
    return Retry(max=len(intervals), interval=list(intervals)) if intervals else JOB_RETRY


def _enqueue(connection: redis.Redis, messages: list[OutboxMessage]) -> None:
    by_queue: dict[str, list[OutboxMessage]] = {}
    for message in messages:
        by_queue.setdefault(message.queue, []).append(message)
    now = clock.now()
    for name, batch in by_queue.items():
        queue = Queue(name, connection=connection)
        immediate = [m for m in batch if m.run_at is None or m.run_at <= now]
        later = [m for m in batch if m not in immediate]
        if immediate:
            queue.enqueue_many(
                [
                    Queue.prepare_data(
                        RUNNER,
                        args=(m.id,),
                        job_id=m.rq_job_id,
                        timeout=JOB_TIMEOUT,
                        retry=_retry(),
                        description=f"{m.job} (outbox {m.id})",
                    )
                    for m in immediate
                ]
            )
        for m in later:
            queue.enqueue_at(
                m.run_at,
                RUNNER,
                m.id,
                job_id=m.rq_job_id,
                job_timeout=JOB_TIMEOUT,
                retry=_retry(),
                description=f"{m.job} (outbox {m.id})",
            )


def relay_once(*, connection: redis.Redis, limit: int = 200) -> RelayResult:
    """Move one batch of due messages to RQ and mark them sent; on a Redis failure, back off and keep them."""
    messages = _due_batch(limit)
    if not messages:
        db.session.commit()
        return RelayResult()
    try:
        _enqueue(connection, messages)
    except redis.RedisError as exc:
        for message in messages:
            message.attempts += 1
            message.last_error = f"{type(exc).__name__}: {exc}"[:500]
            message.next_attempt_at = clock.now() + _backoff(message.attempts)
        db.session.commit()
        log.warning("outbox relay: redis unavailable, %d messages kept for retry", len(messages))
        return RelayResult(failed=len(messages))
    sent_at = clock.now()
    for message in messages:
        message.sent_at = sent_at
    db.session.commit()
    return RelayResult(sent=len(messages))


NO_GUARD = contextlib.nullcontext()


def relay_all(
    *,
    connection: redis.Redis,
    limit: int = 200,
    each_batch: AbstractContextManager = NO_GUARD,
) -> RelayResult:
    """Relay until nothing due is left or Redis refuses, each batch inside ``each_batch`` (a lock the
    worker's relay thread holds while it is in the database)."""
    total = RelayResult()
    while True:
        with each_batch:
            result = relay_once(connection=connection, limit=limit)
        total.sent += result.sent
        total.failed += result.failed
        if result.failed or result.sent < limit:
            return total


def claim(message_id: int) -> OutboxMessage | None:
    """Lock a message for its job; None when it is already done (a duplicate run changes nothing)."""
    query = select(OutboxMessage).where(OutboxMessage.id == message_id)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    message = db.session.scalar(query)
    if message is None or message.done_at is not None:
        return None
    return message


def rebuild_lost(
    *,
    connection: redis.Redis,
    horizon: timedelta | None = None,
    now: datetime | None = None,
    batch: int = 1000,
) -> int:
    """Send again every message marked sent but neither done nor known to Redis (a flushed Redis).

    With a ``horizon``, only messages due to run within it (or already due) are checked: a periodic sweep
    then costs what is due soon, not everything scheduled for the weeks ahead.
    """
    from rq.job import Job

    now = now or clock.now()
    query = select(OutboxMessage.id).where(
        OutboxMessage.sent_at.is_not(None), OutboxMessage.done_at.is_(None)
    )
    if horizon is not None:
        query = query.where(or_(OutboxMessage.run_at.is_(None), OutboxMessage.run_at <= now + horizon))
    ids = list(db.session.scalars(query.order_by(OutboxMessage.id)))
    lost: list[int] = []
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with connection.pipeline(transaction=False) as pipe:
            for message_id in chunk:
                pipe.exists(Job.key_for(rq_job_id(message_id)))
            known = pipe.execute()
        lost += [message_id for message_id, exists in zip(chunk, known, strict=True) if not exists]
    for start in range(0, len(lost), batch):
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(lost[start : start + batch]), OutboxMessage.done_at.is_(None))
            .values(sent_at=None, next_attempt_at=now)
        )
    db.session.commit()
    return len(lost)


def purge_done(*, kept: timedelta = DONE_KEPT, batch: int = PURGE_BATCH) -> int:
    """Remove the messages whose job was done more than ``kept`` ago, a batch per transaction; return how
    many. Without it the table grows by every side effect of every state change, for ever."""
    cutoff = clock.now() - kept
    removed = 0
    while True:
        oldest = (
            select(OutboxMessage.id)
            .where(OutboxMessage.done_at < cutoff)
            .order_by(OutboxMessage.id)
            .limit(batch)
        )
        count = db.session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(oldest))).rowcount
        db.session.commit()
        removed += count
        if count < batch:
            return removed
