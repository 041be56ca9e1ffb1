"""Job functions, enqueued by dotted name (``workers.jobs.<name>``); the backend never imports this module."""

from sqlalchemy import text

import workers.notify  # noqa: F401  (registers "notify.send")
from backend.db import db
from workers.app_context import app
from workers.registry import job


def ping() -> str:
    """Prove a worker can reach the database from inside a job."""
    with app().app_context():
        db.session.execute(text("SELECT 1"))
        return "pong"


@job("ping")
def ping_job() -> None:
    """A no-op outbox job: proves the relay → RQ → worker path (and RQ's own overhead in bench/)."""
