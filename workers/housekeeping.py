"""Housekeeping of bookkeeping rows (RQ's cron scheduler inside `sandan worker`): outbox messages long done,
and Idempotency-Keys long past any retry."""

from backend import idempotency
from backend.outbox import service as outbox
from workers.app_context import app

PURGE_INTERVAL = 24 * 3600


def purge_bookkeeping() -> dict:
    """Remove outbox messages done a week ago and Idempotency-Keys recorded a week ago."""
    with app().app_context():
        return {"outbox_messages": outbox.purge_done(), "idempotency_keys": idempotency.purge_expired()}
