from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import PublicIdMixin, TimestampMixin, UTCDateTime, db


class Upload(PublicIdMixin, TimestampMixin, db.Model):
    """A file a user uploaded (a photo of the problem, proof of the work), then attached to one thing."""

    PUBLIC_ID_PREFIX = "up"
    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_attached", "attached_type", "attached_id"),)

    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Where the storage backend keeps the bytes; never shown to clients.
    storage_key: Mapped[str] = mapped_column(String(128), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # What it became part of: ("order", id) as a photo, ("order_proof", id) as proof; null until attached.
    attached_type: Mapped[str | None] = mapped_column(String(32))
    attached_id: Mapped[int | None] = mapped_column(Integer)
    attached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
