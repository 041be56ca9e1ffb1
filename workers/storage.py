"""Housekeeping of uploads (RQ's cron scheduler inside `sandan worker`)."""

from backend.storage import service as storage
from workers.app_context import app

PURGE_INTERVAL = 3600


def purge_unattached_uploads() -> dict:
    """Remove photos nobody attached within a day of uploading them."""
    with app().app_context():
        return {"removed": storage.purge_unattached()}
