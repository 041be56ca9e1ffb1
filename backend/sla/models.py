from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend import clock
from backend.db import UTCDateTime, db

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
