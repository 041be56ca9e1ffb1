from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend import clock
from backend.db import PublicIdMixin, TimestampMixin, UTCDateTime, db

STATUSES = ("pending", "retrying", "sent", "no_grant", "refused", "failed", "disabled", "inbox_only")
STATUS_LABELS = {
    "pending": "待发送微信提醒",
    "retrying": "微信提醒等待重试",
    "sent": "已发送微信提醒",
    "no_grant": "未订阅微信提醒，仅站内通知",
    "refused": "用户已拒收微信提醒，仅站内通知",
    "failed": "微信提醒发送失败，仅站内通知",
    "disabled": "微信提醒模板未启用，仅站内通知",
    "inbox_only": "仅站内通知",
}
# A notification in one of these is never sent again, whoever runs its job.
FINAL_STATUSES = frozenset(STATUSES) - {"pending", "retrying"}

OUTCOMES = (
    "queued",
    "inbox_only",
    "sent",
    "no_grant",
    "refused",
    "retry",
    "failed",
    "disabled",
)
OUTCOME_LABELS = {
    "queued": "已排队发送微信提醒",
    "inbox_only": "仅投递站内信",
    "sent": "微信提醒已发送",
    "no_grant": "用户未订阅，未发送",
    "refused": "用户拒收，已清除订阅",
    "retry": "发送受限或失败，稍后重试",
    "failed": "发送失败",
    "disabled": "模板未启用，未发送",
}


class Notification(PublicIdMixin, TimestampMixin, db.Model):
    """One message to one user: always in the in-app inbox; delivered through WeChat when it can be."""

    __tablename__ = "notifications"
    PUBLIC_ID_PREFIX = "ntf"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'retrying', 'sent', 'no_grant', 'refused', 'failed', 'disabled', "
            "'inbox_only')",
            name="status",
        ),
        # The inbox reads newest first per user, all or unread only.
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_user_unread", "user_id", "read_at", "id"),
        Index("ix_notifications_subject", "subject_type", "subject_id"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    event: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(String(1000))
    # The caller's semantic fields (subject, number, state, at, note, place), for the WeChat message.
    fields: Mapped[dict] = mapped_column(JSON, default=dict)
    page: Mapped[str | None] = mapped_column(String(256))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Delivery through WeChat: the template used, WeChat's msgid, the calls made, the last error.
    template_id: Mapped[str | None] = mapped_column(String(64))
    msgid: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(String(200))
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    history: Mapped[list["NotificationHistory"]] = relationship(
        back_populates="notification", lazy="selectin", order_by="NotificationHistory.id"
    )

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


class NotificationHistory(db.Model):
    """A step of a notification's delivery: queued, and then every attempt with its outcome."""

    __tablename__ = "notification_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    outcome: Mapped[str] = mapped_column(String(16))
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(String(200))
    notification: Mapped[Notification] = relationship(back_populates="history")

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]


class NotificationTemplate(db.Model):
    """The WeChat subscribe-message template of an event: its id and which semantic field fills each key."""

    __tablename__ = "notification_templates"

    event: Mapped[str] = mapped_column(String(32), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), index=True)
    # WeChat key → semantic field, e.g. {"thing1": "subject", "time4": "at"}.
    fields: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Null while the row is the shipped default; set once a street admin edits it (seeding then skips it).
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class SubscriptionGrant(TimestampMixin, db.Model):
    """The one-time subscriptions a user granted for a template (wx.requestSubscribeMessage), not yet used."""

    __tablename__ = "subscription_grants"
    __table_args__ = (
        UniqueConstraint("user_id", "template_id"),
        CheckConstraint("remaining >= 0", name="remaining"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    template_id: Mapped[str] = mapped_column(String(64))
    remaining: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
