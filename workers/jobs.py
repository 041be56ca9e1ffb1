"""Job functions, enqueued by dotted name (``workers.jobs.<name>``); the backend never imports this module."""

from sqlalchemy import text

from backend.db import db
from workers.app_context import app


def ping() -> str:
    """Prove a worker can reach the database from inside a job."""
    with app().app_context():
        db.session.execute(text("SELECT 1"))
        return "pong"
