"""Appointments (网上预约): service points, their weekly opening slots, the dated occurrences of those slots
that someone booked, and the bookings themselves.

A weekly slot ("Tuesdays 09:00–11:30, 4 places") is offered on dates; an occurrence row for (slot, date) is
only written when the first booking arrives. The occurrence carries the seat counter: a booking takes a
seat with ``UPDATE ... SET booked = booked + 1 WHERE booked < capacity``, so the database itself refuses the
seat after the last one, however many requests arrive at once.
"""

from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend import clock
from backend.db import PublicIdMixin, TimestampMixin, UTCDateTime, db
from backend.errands.names import type_name

BOOKING_STATES = ("booked", "cancelled", "attended")
BOOKING_STATE_LABELS = {"booked": "已预约", "cancelled": "已取消", "attended": "已到场办理"}
ACTIVE_SQL = "state = 'booked'"
WEEKDAY_LABELS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


class ServicePoint(PublicIdMixin, TimestampMixin, db.Model):
    """A place residents book a visit at (社区党群服务中心代办窗口): a community's, or the street's own."""

    PUBLIC_ID_PREFIX = "sp"
    __tablename__ = "service_points"
    __table_args__ = (
        CheckConstraint("booking_days_ahead BETWEEN 1 AND 90", name="booking_days_ahead"),
        Index("ix_service_points_street_community", "street_id", "community_id", "id"),
    )

    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    # Null for a street-level point, which serves every community of the street.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Errand type codes handled here ("subsistence_allowance", ...).
    errand_types: Mapped[list] = mapped_column(JSON, default=list)
    # How many days ahead residents may book (today included).
    booking_days_ahead: Mapped[int] = mapped_column(SmallInteger, default=14)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    slots: Mapped[list["OpeningSlot"]] = relationship(
        back_populates="point",
        order_by="(OpeningSlot.weekday, OpeningSlot.start_time, OpeningSlot.id)",
    )


class OpeningSlot(PublicIdMixin, TimestampMixin, db.Model):
    """A weekly opening period of a point: weekday, local start and end (Asia/Shanghai), places per date.

    Times are fixed once created (bookings refer to them); close a slot (``active`` false) and open another
    to change them. Closing a slot stops new bookings; bookings already made stand.
    """

    PUBLIC_ID_PREFIX = "sl"
    __tablename__ = "opening_slots"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday"),
        CheckConstraint("end_time > start_time", name="time_order"),
        CheckConstraint("capacity BETWEEN 1 AND 1000", name="capacity"),
        Index("ix_opening_slots_point", "point_id", "weekday", "start_time"),
    )

    point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"))
    weekday: Mapped[int] = mapped_column(SmallInteger)  # ISO: 1 Monday … 7 Sunday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    capacity: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    point: Mapped[ServicePoint] = relationship(back_populates="slots", lazy="joined")

    @property
    def weekday_label(self) -> str:
        return WEEKDAY_LABELS[self.weekday - 1]


class SlotOccurrence(db.Model):
    """A weekly slot on one date, written when first booked; ``booked`` never exceeds ``capacity``.

    ``capacity`` is the slot's at the time of writing, and follows later changes to the slot. Lowering it
    below ``booked`` keeps the bookings already made and takes no more.
    """

    __tablename__ = "slot_occurrences"
    __table_args__ = (
        UniqueConstraint("slot_id", "day"),
        CheckConstraint("booked >= 0", name="booked"),
        Index("ix_slot_occurrences_starts", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("opening_slots.id"))
    day: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Booking(PublicIdMixin, TimestampMixin, db.Model):
    """A resident's appointment at one occurrence, for one errand type: booked, then cancelled or attended.

    Made by the resident, or by a secretary for the resident (代约: ``booked_by_id`` is the secretary).
    ``schedule_version`` counts the times it was booked or moved: the reminder recorded for a version does
    nothing once the booking moved on.
    """

    PUBLIC_ID_PREFIX = "ap"
    __tablename__ = "appointment_bookings"
    __table_args__ = (
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in BOOKING_STATES) + ")", name="state"),
        # One active booking per resident and occurrence, whoever made it, however concurrently.
        Index(
            "uq_appointment_bookings_active",
            "occurrence_id",
            "resident_id",
            unique=True,
            postgresql_where=text(ACTIVE_SQL),
            sqlite_where=text(ACTIVE_SQL),
        ),
        Index("ix_appointment_bookings_resident", "resident_id", "id"),
        Index("ix_appointment_bookings_community", "community_id", "id"),
        Index("ix_appointment_bookings_point", "point_id", "id"),
        Index("ix_appointment_bookings_street", "street_id", "id"),
    )

    resident_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The resident's community (scopes what secretaries see) and the point's street (street admins).
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("opening_slots.id"))
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("slot_occurrences.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    errand_type: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="booked")
    booked_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    booked_by_role: Mapped[str] = mapped_column(String(32))
    schedule_version: Mapped[int] = mapped_column(Integer, default=1)
    reminded_version: Mapped[int | None] = mapped_column(Integer)
    moved_count: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    attended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The errand (errands domain) this visit became; no foreign key: that table comes in a later migration.
    errand_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    point: Mapped[ServicePoint] = relationship(lazy="joined")
    slot: Mapped[OpeningSlot] = relationship(lazy="joined")

    @property
    def state_label(self) -> str:
        return BOOKING_STATE_LABELS[self.state]

    @property
    def errand_type_label(self) -> str:
        return type_name(self.errand_type)

    @property
    def slot_date(self) -> date:
        """The visit's local date."""
        return clock.to_local(self.starts_at).date()

    @property
    def by_proxy(self) -> bool:
        """代约: someone other than the resident made the booking."""
        return self.booked_by_id != self.resident_id
