from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import PublicIdMixin, TimestampMixin, UTCDateTime, db
from backend.privacy.crypto import EncryptedText


class User(PublicIdMixin, TimestampMixin, db.Model):
    """Anyone who signs in through the mini-program; what they may do comes from their memberships."""

    __tablename__ = "users"
    PUBLIC_ID_PREFIX = "u"

    openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    real_name: Mapped[str] = mapped_column(String(64), default="")
    # Sensitive: ciphertext at rest, HMAC blind index for lookup (see backend/privacy).
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    phone_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number: Mapped[str | None] = mapped_column(EncryptedText)
    id_number_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    memberships: Mapped[list["RoleMembership"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin", order_by="RoleMembership.id"
    )


class RoleMembership(PublicIdMixin, TimestampMixin, db.Model):
    """A role held in one scope: a secretary of one community, a volunteer of one organization..."""

    __tablename__ = "role_memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "scope_type", "scope_id"),
        Index("ix_role_memberships_scope", "scope_type", "scope_id", "role"),
    )
    PUBLIC_ID_PREFIX = "rm"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(32))
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[int]
    user: Mapped[User] = relationship(back_populates="memberships")


class AuthSession(PublicIdMixin, TimestampMixin, db.Model):
    """One signed-in device: access tokens name it, so revoking it ends them all."""

    __tablename__ = "auth_sessions"
    PUBLIC_ID_PREFIX = "ses"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Only a hash is kept: a leaked table does not leak usable refresh tokens.
    refresh_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The session's last refresh token from before tokens named their session (backend/auth/tokens.py):
    # presented again, it means a copy leaked, and the session is revoked. Later tokens need no column.
    previous_refresh_token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    refresh_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[User] = relationship(lazy="joined")
