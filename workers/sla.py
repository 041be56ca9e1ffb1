"""SLA card jobs (from the outbox) and the periodic sweep (RQ's cron scheduler inside `sandan worker`)."""

import logging
import threading
from collections.abc import Callable

import redis
from rq.cron import CronScheduler

from backend.sla import clocks
from workers import housekeeping, storage
from workers.app_context import app
from workers.registry import job

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 60
# Every worker runs the cron loop (any one may be down); the lock lets one sweep at a time.
SWEEP_LOCK = "sandan:sla:sweep-lock"
# Organizations' records age by the hour at most (a rating or a finished order counts at once).
RECORDS_INTERVAL = 3600
RECORDS_LOCK = "sandan:orders:records-lock"


@job(clocks.WARN_JOB)
def warn(*, clock_id: int, generation: int) -> None:
    """Raise a clock's yellow card (nothing if it moved, stopped or was already warned)."""
    clocks.raise_warning(clock_id=clock_id, generation=generation)


@job(clocks.OVERDUE_JOB)
def overdue(*, clock_id: int, generation: int) -> None:
    """Raise a clock's red card (nothing if it moved, stopped or was already raised)."""
    clocks.raise_overdue(clock_id=clock_id, generation=generation)


def _alone(lock_name: str, timeout: int, work: Callable[[], dict]) -> dict:
    """Run ``work`` in the app unless another worker is running it (behind a Redis lock); a failure rolls
    back the session before it is raised."""
    from backend.db import db
    from backend.extensions import get_redis

    with app().app_context():
        lock = get_redis().lock(lock_name, timeout=timeout, blocking=False)
        if not lock.acquire():
            return {"skipped": True}
        try:
            return work()
        except Exception:
            db.session.rollback()
            raise
        finally:
            lock.release()


def sweep() -> dict:
    """Re-send card jobs Redis lost and raise cards whose jobs never came; one sweeper at a time."""
    from flask import current_app

    from backend.extensions import get_redis

    def work() -> dict:
        result = clocks.sweep(connection=get_redis())
        current_app.logger.info("sla sweep: %s", result)
        return {"resent": result.resent, "warnings": result.warnings, "overdue": result.overdue}

    return _alone(SWEEP_LOCK, 10 * SWEEP_INTERVAL, work)


def recount_records() -> dict:
    """Recount every organization's record for recommendations: what aged out of its window leaves it."""
    from backend.db import db
    from backend.orders.recommend import refresh_records

    def work() -> dict:
        written = refresh_records()
        db.session.commit()
        return {"records": written}

    return _alone(RECORDS_LOCK, RECORDS_INTERVAL, work)


def cron_forever(redis_url: str, stop: threading.Event) -> None:
    """Enqueue the sweep every minute, and the records' recount every hour, through RQ's cron scheduler
    until stopped; and the housekeeping: the hourly purge of photos nobody attached, the daily one of
    bookkeeping rows."""
    connection = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=5)
    scheduler = CronScheduler(connection=connection, name=f"sandan-sweep-{threading.get_native_id()}")
    scheduler.register(sweep, queue_name="low", interval=SWEEP_INTERVAL, job_timeout=5 * SWEEP_INTERVAL)
    scheduler.register(recount_records, queue_name="low", interval=RECORDS_INTERVAL, job_timeout=600)
    scheduler.register(
        storage.purge_unattached_uploads, queue_name="low", interval=storage.PURGE_INTERVAL, job_timeout=600
    )
    scheduler.register(
        housekeeping.purge_bookkeeping,
        queue_name="low",
        interval=housekeeping.PURGE_INTERVAL,
        job_timeout=1800,
    )
    # The first sweep a minute after start: a starting worker has the relay's backlog to move first.
    stop.wait(SWEEP_INTERVAL)
    while not stop.is_set():
        try:
            scheduler.enqueue_jobs()
            wait = scheduler.calculate_sleep_interval()
        except redis.RedisError:
            log.warning("sla cron: redis unavailable; retrying")
            wait = 5
        stop.wait(max(wait, 1))
