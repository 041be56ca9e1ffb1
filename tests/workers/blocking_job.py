"""Outbox jobs for worker tests, run by real `sandan worker` processes.

A worker imports this module because its test sets ``SANDAN_WORKER_IMPORTS=tests.workers.blocking_job``
(the worker runs from the repository root, where ``tests`` imports as a namespace package); the product's
job registry is untouched. Jobs coordinate with the test through Redis keys, so a test waits on conditions.
"""

import os
import time

from sqlalchemy import select

from backend.db import db
from backend.extensions import get_redis
from backend.outbox import service as outbox
from backend.outbox.models import OutboxMessage
from workers.registry import job

MODULE = __name__
BLOCKING = "test.blocking"
FOLLOW_UP = "test.follow_up"
FLAKY = "test.flaky"
# Redis keys: how many times the blocking job has started, and the switch that lets it finish.
RUNS_KEY = "sandan:test:blocking:runs"
PID_KEY = "sandan:test:blocking:pid"  # the work horse running it (RQ forks one per job, in its own group)
RELEASE_KEY = "sandan:test:blocking:release"
FLAKY_RUNS_KEY = "sandan:test:flaky:runs"
FIXED_KEY = "sandan:test:flaky:fixed"
# A blocking job never outlives a broken test by much.
MAX_BLOCK_SECONDS = 60


@job(BLOCKING)
def block_until_released(order: str) -> None:
    """Record a follow-up step (the job's database effect), say it started, then wait to be released."""
    outbox.record(job=FOLLOW_UP, args={"order": order})
    db.session.flush()  # the effect is written, but only commits with the message's "done" mark
    connection = get_redis()
    connection.set(PID_KEY, os.getpid())
    connection.incr(RUNS_KEY)
    deadline = time.monotonic() + MAX_BLOCK_SECONDS
    while not connection.exists(RELEASE_KEY):
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.05)


@job(FOLLOW_UP)
def follow_up(order: str) -> None:
    """The next step a blocking job records; nothing to do."""


@job(FLAKY)
def fail_until_fixed(order: str) -> None:
    """Fail (as a call to a service that is down would) until the test marks the outage over."""
    connection = get_redis()
    connection.incr(FLAKY_RUNS_KEY)
    if not connection.exists(FIXED_KEY):
        raise ConnectionError(f"订单 {order} 的下游服务不可用")
    outbox.record(job=FOLLOW_UP, args={"order": order})


def crash(label: str) -> None:
    """A plain RQ job (not an outbox one) that always fails."""
    raise ValueError(f"崩溃 {label}")


def follow_ups(order: str) -> int:
    """How many follow-up steps were committed for an order."""
    rows = db.session.scalars(select(OutboxMessage.args).where(OutboxMessage.job == FOLLOW_UP))
    return sum(1 for args in rows if args.get("order") == order)
