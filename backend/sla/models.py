from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Time,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend import clock
from backend.db import UTCDateTime, db

# What an order or errand shows when no clock runs: boards and queues sort by deadline, and this one sorts
# after every real one.
NO_DEADLINE = datetime(2999, 1, 1, tzinfo=UTC)
DAY_KINDS = ("holiday", "workday")
DAY_KIND_LABELS = {"holiday": "放假", "workday": "调休上班"}


class CalendarDay(db.Model):
    """A day that breaks the weekly rule: a holiday (休) or a make-up workday on a weekend (调休上班)."""

    __tablename__ = "calendar_days"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    date: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64), default="")
    # Null when the row came from the shipped official notice rather than from a person.
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    @property
    def kind_label(self) -> str:
        return DAY_KIND_LABELS[self.kind]


class CalendarYear(db.Model):
    """What is known of a year: ``official`` once its days follow the State Council's notice.

    Due times reaching into a year that is not official are flagged as assumed, even if some of its days
    were entered by hand (a provisional arrangement can be noted here while the notice is awaited).
    """

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    official: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(200), default="")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class CalendarRevision(db.Model):
    """One row, rewritten by every calendar change: processes compare its token to know their cache is stale.

    A random token rather than the counter alone, so a restored backup or an emptied table can never bring
    back a number a process has already cached different contents under.
    """

    __tablename__ = "calendar_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(Integer, default=0)
    token: Mapped[str] = mapped_column(String(32))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class ServicePeriod(db.Model):
    """One period of the service hours every working day keeps (09:00–12:00, 13:30–17:30 ...). Working-day
    limits count only these hours; with no rows, the default hours (sla.calendar.DEFAULT_HOURS) apply."""

    __tablename__ = "service_periods"

    start: Mapped[time] = mapped_column(Time, primary_key=True)
    end: Mapped[time] = mapped_column(Time)


CLOCK_STATES = ("running", "paused", "stopped")
CLOCK_STATE_LABELS = {"running": "计时中", "paused": "已暂停", "stopped": "已停止"}
UNITS = ("working_days", "working_hours", "hours")


class SlaPolicyOverride(db.Model):
    """A street admin's change to the default time limits of a service kind, or of one category in it.

    A category row wins over its kind's row, which wins over the defaults in ``backend.sla.policy``. A null
    extension or return limit means that action is not allowed.
    """

    __tablename__ = "sla_policy_overrides"
    __table_args__ = (
        CheckConstraint(
            "service_kind IN ('urgent', 'daily', 'targeted', 'professional')", name="service_kind"
        ),
        Index("uq_sla_policy_overrides_kind_category", "service_kind", "category_code", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_kind: Mapped[str] = mapped_column(String(16))
    # Empty for the kind's own row (not null: a unique index must treat it as a value on every database).
    category_code: Mapped[str] = mapped_column(String(64), default="")
    accept_amount: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    accept_unit: Mapped[str] = mapped_column(String(16))
    complete_amount: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    complete_unit: Mapped[str] = mapped_column(String(16))
    extension_amount: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    extension_unit: Mapped[str | None] = mapped_column(String(16))
    return_amount: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    return_unit: Mapped[str | None] = mapped_column(String(16))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class SlaClock(db.Model):
    """One time limit running on one tracked item: an order's acceptance, its completion, an errand step.

    The row is the truth; the warning and overdue jobs scheduled from it carry its ``generation``, so a job
    scheduled before a pause, resume or extension finds the number changed and does nothing.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        CheckConstraint("state IN ('running', 'paused', 'stopped')", name="state"),
        Index("ix_sla_clocks_subject", "subject_type", "subject_id", "name"),
        # The sweep's two questions, kept small: only clocks still owing a card are indexed.
        Index(
            "ix_sla_clocks_warning_owed",
            "warn_at",
            postgresql_where=text("state = 'running' AND warned_at IS NULL"),
            sqlite_where=text("state = 'running' AND warned_at IS NULL"),
        ),
        Index(
            "ix_sla_clocks_overdue_owed",
            "due_at",
            postgresql_where=text("state = 'running' AND overdue_at IS NULL"),
            sqlite_where=text("state = 'running' AND overdue_at IS NULL"),
        ),
        Index("ix_sla_clocks_community_overdue", "community_id", "overdue_at"),
        Index("ix_sla_clocks_organization_overdue", "organization_id", "overdue_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(Integer)
    # Which limit: "accept", "complete", or an errand step's code.
    name: Mapped[str] = mapped_column(String(64))
    # Who answers for it: the community always, the organization once one holds the item.
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    # The limit as it was when the clock started: a later policy change does not move a running deadline.
    amount: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    unit: Mapped[str] = mapped_column(String(16))
    # A service-level limit people answer for (cards, 督办, overdue counts), or a timer the system acts on
    # alone (auto-dispatch an urgent order nobody dispatched): no yellow card, no 督办, only the hook.
    escalates: Mapped[bool] = mapped_column(Boolean, default=True)
    extension_amount: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    extension_unit: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # [[paused_at, resumed_at or null], ...] as ISO strings; the last may be open while paused.
    pauses: Mapped[list] = mapped_column(JSON, default=list)
    # Null while paused: nobody can say when a clock that is not running will run out.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Years the due time guessed (no official holiday notice yet), for the note shown beside it.
    assumed_years: Mapped[list] = mapped_column(JSON, default=list)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    # Met when stopped at or before the due time (extensions included); null while open.
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    @property
    def state_label(self) -> str:
        return CLOCK_STATE_LABELS[self.state]
