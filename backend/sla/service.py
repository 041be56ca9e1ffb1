"""The working-day calendar as data: reading it (cached per process), editing it, seeding the notices."""

import csv
import io
import re
import secrets
import threading
from collections.abc import Iterable
from datetime import date, datetime, time
from importlib import resources
from itertools import pairwise

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from backend import clock
from backend.db import commit_unless_taken, db
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.sla.calendar import DEFAULT_HOURS, Due, Pause, Unit, WorkCalendar
from backend.sla.models import DAY_KINDS, CalendarDay, CalendarRevision, CalendarYear, ServicePeriod

REVISION_ID = 1
_SEED_FILE = re.compile(r"^cn-holidays-(\d{4})\.csv$")

# Per process and per database: {engine url: (revision token, calendar)}.
_cache: dict[str, tuple[str, WorkCalendar]] = {}
_cache_lock = threading.Lock()


# Reading


def load_calendar() -> WorkCalendar:
    """Return the working calendar, rebuilt only when the table changed since this process last read it."""
    key = db.engine.url.render_as_string(hide_password=True)
    # The token is read before the days: a change committed in between is then cached under the old token,
    # which the next call sees as stale, never the other way round.
    token = db.session.scalar(select(CalendarRevision.token).where(CalendarRevision.id == REVISION_ID))
    cached = _cache.get(key)
    if token is not None and cached is not None and cached[0] == token:
        return cached[1]
    calendar = _read_calendar()
    if token is not None:
        with _cache_lock:
            _cache[key] = (token, calendar)
    return calendar


def _read_calendar() -> WorkCalendar:
    rows = db.session.execute(select(CalendarDay.date, CalendarDay.kind)).all()
    years = db.session.scalars(select(CalendarYear.year).where(CalendarYear.official.is_(True)))
    hours = db.session.execute(select(ServicePeriod.start, ServicePeriod.end)).all()
    return WorkCalendar(
        holidays=[d for d, kind in rows if kind == "holiday"],
        workdays=[d for d, kind in rows if kind == "workday"],
        known_years=list(years),
        hours=[tuple(period) for period in hours] or DEFAULT_HOURS,
    )


def list_days(*, year: int) -> list[CalendarDay]:
    """Return the year's holidays and make-up workdays in date order."""
    query = (
        select(CalendarDay)
        .where(CalendarDay.date >= date(year, 1, 1), CalendarDay.date <= date(year, 12, 31))
        .order_by(CalendarDay.date)
    )
    return list(db.session.scalars(query))


def get_year(year: int) -> CalendarYear | None:
    return db.session.get(CalendarYear, year)


def compute_due(*, start: datetime, amount, unit: Unit | str, pauses: Iterable[Pause] = ()) -> Due | None:
    """Return the due time of a limit of ``amount`` ``unit`` from ``start``; None while a pause is open."""
    return load_calendar().due_with_pauses(start, amount, unit, pauses)


# Editing


def _bump(actor) -> None:
    """Record that the calendar changed, in the caller's transaction, so every process reloads it."""
    values = {
        "number": CalendarRevision.number + 1,
        "token": secrets.token_hex(16),
        "updated_by_id": None if actor is None else actor.id,
        "updated_at": clock.now(),
    }
    bump = update(CalendarRevision).where(CalendarRevision.id == REVISION_ID).values(**values)
    if db.session.execute(bump).rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.add(
                CalendarRevision(
                    id=REVISION_ID,
                    number=1,
                    token=values["token"],
                    updated_by_id=values["updated_by_id"],
                    updated_at=values["updated_at"],
                )
            )
    except IntegrityError:
        # Another process created the row first; its row lock now orders us after it.
        db.session.execute(bump)


def _commit() -> None:
    commit_unless_taken(Conflict("日历刚被他人修改，请刷新后重试", code="calendar_changed"))


def set_day(*, actor, day: date, kind: str, name: str = "") -> CalendarDay:
    """Mark a day as a holiday or a make-up workday, replacing what the table said about it."""
    if kind not in DAY_KINDS:
        raise ValidationFailed(details={"kind": ["只能是 holiday（放假）或 workday（调休上班）"]})
    if kind == "workday" and day.weekday() < 5:
        raise ValidationFailed(details={"kind": ["周一至周五本来就上班，调休上班只能设在周六或周日"]})
    row = db.session.get(CalendarDay, day)
    if row is None:
        row = CalendarDay(date=day)
        db.session.add(row)
    row.kind = kind
    row.name = name
    row.updated_by_id = None if actor is None else actor.id
    row.updated_at = clock.now()
    _bump(actor)
    _commit()
    return row


def delete_day(*, actor, day: date) -> None:
    """Remove a day's entry, so the weekly rule applies to it again."""
    row = db.session.get(CalendarDay, day)
    if row is None:
        raise NotFound("该日期没有放假或调休安排", code="calendar_day_not_found")
    db.session.delete(row)
    _bump(actor)
    _commit()


def mark_year(*, actor, year: int, official: bool, note: str = "") -> CalendarYear:
    """Record whether a year's days follow the official notice; only official years count as known."""
    row = db.session.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year)
        db.session.add(row)
    row.official = official
    row.note = note
    row.updated_by_id = None if actor is None else actor.id
    row.updated_at = clock.now()
    _bump(actor)
    _commit()
    return row


MAX_PERIODS = 4
MIN_DAY_MINUTES = 60


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def set_service_hours(*, actor, periods: list[tuple[time, time]]) -> WorkCalendar:
    """Replace the service hours of every working day; limits started from now on count them (a running
    clock keeps the deadline it has until it is paused and resumed, or extended). Return the calendar."""
    checked = sorted(periods)
    if not 1 <= len(checked) <= MAX_PERIODS:
        raise ValidationFailed(details={"periods": [f"服务时段应为 1 至 {MAX_PERIODS} 段"]})
    for start, end in checked:
        if end <= start:
            raise ValidationFailed(
                details={"periods": [f"{start:%H:%M}–{end:%H:%M}：结束时间须晚于开始时间"]}
            )
        if start.second or end.second or start.microsecond or end.microsecond:
            raise ValidationFailed(details={"periods": ["时间精确到分钟即可（HH:MM）"]})
    for (_, earlier_end), (later_start, _) in pairwise(checked):
        if later_start < earlier_end:
            raise ValidationFailed(details={"periods": ["服务时段不能重叠"]})
    if sum(_minutes(end) - _minutes(start) for start, end in checked) < MIN_DAY_MINUTES:
        # Limits run up to 3,500 working hours, counted day by day: minutes a day would be centuries.
        raise ValidationFailed(details={"periods": [f"服务时段每天合计至少 {MIN_DAY_MINUTES // 60} 小时"]})
    # The revision row first: its lock queues a concurrent change behind this one, whose delete then sees
    # (and removes) the periods committed before it. Deleting first, two changes at once both deleted
    # only the old rows and left both their periods, overlapping, which no calendar can load.
    _bump(actor)
    db.session.execute(delete(ServicePeriod))
    db.session.add_all(ServicePeriod(start=start, end=end) for start, end in checked)
    _commit()
    return load_calendar()


# Seeding


def _shipped_notices() -> list[tuple[int, list[tuple[date, str, str]]]]:
    """The official notices shipped in backend/seed (cn-holidays-YYYY.csv), one per year."""
    notices = []
    for entry in sorted(resources.files("backend").joinpath("seed").iterdir(), key=lambda e: e.name):
        match = _SEED_FILE.match(entry.name)
        if not match:
            continue
        rows = []
        for row in csv.DictReader(io.StringIO(entry.read_text(encoding="utf-8"))):
            kind = row["kind"].strip()
            if kind not in DAY_KINDS:
                raise ValueError(f"{entry.name}: unknown kind {kind!r} on {row['date']}")
            rows.append((date.fromisoformat(row["date"].strip()), kind, row["name"].strip()))
        notices.append((int(match.group(1)), rows))
    return notices


def seed_official_calendar() -> dict:
    """Load each shipped official notice whose year is not in the table yet; return what was added.

    Idempotent, and never overrides people: a year already recorded (seeded before, or entered by an admin)
    is left alone, and within a new year a date someone already entered keeps its entry.
    """
    added_years, added_days = [], 0
    for year, rows in _shipped_notices():
        if db.session.get(CalendarYear, year) is not None:
            continue
        for day, kind, name in rows:
            if db.session.get(CalendarDay, day) is None:
                db.session.add(CalendarDay(date=day, kind=kind, name=name))
                added_days += 1
        db.session.add(
            CalendarYear(year=year, official=True, note=f"{year}年国务院办公厅放假安排通知（系统内置）")
        )
        added_years.append(year)
    if not added_years:
        return {"years": [], "days": 0}
    _bump(None)
    try:
        db.session.commit()
    except IntegrityError:
        # Another process seeded the same notice at the same moment; its rows are the same.
        db.session.rollback()
        return {"years": [], "days": 0}
    return {"years": added_years, "days": added_days}
