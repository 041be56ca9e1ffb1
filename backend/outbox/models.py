from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from backend import clock
from backend.db import UTCDateTime, db


class OutboxMessage(db.Model):
    """A side effect owed by a committed state change: a job to run once, now or at ``run_at``."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_pending", "sent_at", "next_attempt_at", "id"),
        # Sent but not done, by when they run: what the sweep checks against Redis.
        Index(
            "ix_outbox_messages_in_flight",
            "run_at",
            postgresql_where=text("sent_at IS NOT NULL AND done_at IS NULL"),
            sqlite_where=text("sent_at IS NOT NULL AND done_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A name from workers.registry (the backend never imports workers; it names jobs).
    job: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict] = mapped_column(JSON, default=dict)
    queue: Mapped[str] = mapped_column(String(16), default="default")
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # Relay bookkeeping: when it reached RQ, and how often Redis refused it.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set in the same transaction as the job's own database effects: a second run sees it and does nothing.
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def rq_job_id(self) -> str:
        return rq_job_id(self.id)


def rq_job_id(message_id: int) -> str:
    """The RQ job id of a message: one per message, so enqueueing it twice makes one job."""
    return f"outbox-{message_id}"
