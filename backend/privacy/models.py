from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from backend import clock
from backend.db import UTCDateTime, db


class Consent(db.Model):
    """A person's separate consent (单独同意) to one kind of processing; withdrawn, never deleted."""

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_user_kind", "user_id", "kind"),
        # One in force per person and kind; withdrawn ones stay as history.
        Index(
            "uq_consents_active",
            "user_id",
            "kind",
            unique=True,
            postgresql_where=text("withdrawn_at IS NULL"),
            sqlite_where=text("withdrawn_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    text_version: Mapped[str] = mapped_column(String(32))
    # Set when someone records a consent the person gave offline (a signed paper form).
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SensitiveAccessLog(db.Model):
    """One row for every full read of a sensitive value: who, whose, what, why, when, and in which street
    (the one whose data it was when it was read: its street admins audit it)."""

    __tablename__ = "sensitive_access_logs"
    __table_args__ = (
        Index("ix_sensitive_access_logs_subject", "subject_user_id", "id"),
        Index("ix_sensitive_access_logs_street", "street_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(32))
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    field: Mapped[str] = mapped_column(String(32))
    resource: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    accessed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # None only for a person reading their own data with no residence on record.
    street_id: Mapped[int | None] = mapped_column(ForeignKey("streets.id"))
