from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend import clock
from backend.db import PublicIdMixin, UTCDateTime, db

REASONS = ("overdue", "bad_rating", "second_reopen", "repeated_return", "manual")
REASON_LABELS = {
    "overdue": "超时未办",
    "bad_rating": "居民不满意",
    "second_reopen": "二次重办",
    "repeated_return": "多次退单",
    "manual": "街道督办",
}
STATUSES = ("open", "closed")
STATUS_LABELS = {"open": "督办中", "closed": "已结束"}


class Supervision(PublicIdMixin, db.Model):
    """A 督办 record: the street's follow-up on a tracked item that went wrong. A flag beside the item's
    state, never a state of its own; it stays until someone closes it with what was done."""

    PUBLIC_ID_PREFIX = "sv"
    __tablename__ = "supervisions"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint(
            "reason IN ('overdue', 'bad_rating', 'second_reopen', 'repeated_return', 'manual')", name="reason"
        ),
        Index("ix_supervisions_subject", "subject_type", "subject_id"),
        Index("ix_supervisions_community_status", "community_id", "status", "id"),
        # One overdue record per clock, however often the overdue job or the sweep runs.
        Index("uq_supervisions_clock_reason", "clock_id", "reason", unique=True),
    )

    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(Integer)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    clock_id: Mapped[int | None] = mapped_column(ForeignKey("sla_clocks.id"))
    reason: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Null when the system raised it (an overdue clock).
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str] = mapped_column(Text, default="")

    @property
    def reason_label(self) -> str:
        return REASON_LABELS[self.reason]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]
