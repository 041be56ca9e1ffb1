"""The one RQ entry point for outbox messages, and the relay loop that feeds RQ from the outbox table."""

import logging
import threading

import redis

from backend import clock
from backend.db import db
from backend.outbox import service as outbox
from workers.app_context import app
from workers.registry import lookup

log = logging.getLogger(__name__)

# Held by the relay thread while it is in the database, and by the worker while it forks a work horse: a
# lock the relay held inside the driver at the fork (SQLite's own mutexes) would be copied, held, into the
# horse, which would then wait on it for ever, its job neither done nor failed.
IN_THE_DATABASE = threading.Lock()


def run_message(message_id: int) -> str:
    """Run an outbox message's job once: a message already done is skipped, whoever enqueued it again."""
    with app().app_context():
        message = outbox.claim(message_id)
        if message is None:
            db.session.rollback()
            return "skipped"
        try:
            lookup(message.job)(**message.args)
            message.done_at = clock.now()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return "done"


def relay_forever(redis_url: str, stop: threading.Event, interval: float = 0.5) -> None:
    """Relay due outbox messages until stopped; a database or Redis outage only delays them."""
    connection = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=5)
    with app().app_context():
        while not stop.is_set():
            try:
                # The lock a batch at a time: a backlog does not hold forks up.
                outbox.relay_all(connection=connection, each_batch=IN_THE_DATABASE)
            except Exception:  # the loop must outlive any outage; the rows wait in the database
                log.exception("outbox relay failed; retrying")
                with IN_THE_DATABASE:
                    db.session.rollback()
            finally:
                with IN_THE_DATABASE:
                    db.session.remove()
            stop.wait(interval)
