"""Working days and due-time arithmetic: pure, so the SLA rules can be tested without Flask or a database.

A :class:`WorkCalendar` knows the official holidays, the make-up workdays (调休上班) and which years' official
notice it has. A weekend day not listed is a rest day, a weekday not listed is a working day. Every working
day has the same service hours (09:00–12:00 and 13:30–17:30 by default: 7 hours).

Time limits are measured in *working time*: only service hours on working days count. "n working days" is
n × the length of a working day (7 h) of working time, and a due time is the *earliest* instant at which that
much working time has elapsed since the start. Concretely:

- inside service hours it is the same clock time on the nth following working day (Thursday 10:00 + 1 → Friday
  10:00; Wednesday 2026-09-30 10:00 + 1 → Thursday 2026-10-08 10:00, after National Day);
- a start outside service hours counts from the next opening, and the due is then the *close* of the nth
  working day (Friday 18:00 + 1 → Monday 17:30, and Monday 09:00 + 1 → Monday 17:30 too). Reading it as the
  next opening (Tuesday 09:00) would give the same working time but tell a resident a later day.

This is the usual reading of 12345-style hotline rules ("1 个工作日内签收": within one working day's worth of
office time, the clock running only while the office is open), rather than the Civil Code's period counting
(start day excluded, due at the close of the last day), which would give a Monday 10:00 order until Tuesday
17:30.
Being continuous in working time is what makes pauses, extensions and "one working day before the deadline"
simple sums and differences.

Results say which years they relied on without an official notice: there, weekends were taken as the only
rest days (:class:`Due`.assumed_years), so callers can warn that the date may move.

Every datetime in and out is timezone-aware; arithmetic follows Asia/Shanghai clocks; results are in UTC.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from backend.clock import LOCAL_TZ

DEFAULT_HOURS: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30)))

Pause = tuple[datetime, datetime | None]


class Unit(StrEnum):
    """How a time limit is counted."""

    WORKING_DAYS = "working_days"
    WORKING_HOURS = "working_hours"
    HOURS = "hours"  # around the clock: urgent orders


@dataclass(frozen=True)
class Due:
    """A computed instant (UTC) and the years it assumed weekends were the only rest days."""

    at: datetime
    assumed_years: frozenset[int] = frozenset()

    @property
    def assumed(self) -> bool:
        return bool(self.assumed_years)

    @property
    def note(self) -> str | None:
        return assumption_note(self.assumed_years)


@dataclass(frozen=True)
class Elapsed:
    """Working time between two instants and the years it assumed weekends were the only rest days."""

    time: timedelta
    assumed_years: frozenset[int] = frozenset()

    def total_seconds(self) -> float:
        return self.time.total_seconds()


def assumption_note(years: Iterable[int]) -> str | None:
    """Return the sentence telling people a result rests on guessed years, or None."""
    years = sorted(years)
    if not years:
        return None
    listed = "、".join(str(y) for y in years)
    return f"{listed}年的放假安排尚未公布，暂按周末休息、工作日上班计算，公布后期限可能调整。"


def _require_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def to_timedelta(hours) -> timedelta:
    """Return an amount of hours (int, float, Decimal or timedelta) as an exact timedelta."""
    if isinstance(hours, timedelta):
        return hours
    if isinstance(hours, bool) or not isinstance(hours, int | float | Decimal):
        raise TypeError("hours must be a number or a timedelta")
    # Through the decimal text so 0.1 h is 360 s exactly, not 359.999999 s.
    micros = Decimal(str(hours)) * 3_600_000_000
    if not micros.is_finite():
        raise ValueError("hours must be finite")
    return timedelta(microseconds=int(micros.to_integral_value()))


class WorkCalendar:
    """Working days, service hours and the arithmetic of time limits over them."""

    def __init__(
        self,
        *,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        known_years: Iterable[int] = (),
        hours: Sequence[tuple[time, time]] = DEFAULT_HOURS,
        tz: ZoneInfo = LOCAL_TZ,
    ):
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"dates both holiday and workday: {sorted(both)}")
        self.known_years = frozenset(known_years)
        self.hours = self._check_hours(hours)
        self.tz = tz
        self.day_length = sum(
            (datetime.combine(date.min, e) - datetime.combine(date.min, s) for s, e in self.hours),
            timedelta(),
        )
        self._periods = lru_cache(maxsize=4096)(self._compute_periods)

    @staticmethod
    def _check_hours(hours: Sequence[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
        checked = tuple(sorted((s, e) for s, e in hours))
        if not checked:
            raise ValueError("a working day needs service hours")
        previous_end = None
        for start, end in checked:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("service hours are local wall-clock times, without a zone")
            if end <= start:
                raise ValueError(f"service period ends before it starts: {start}–{end}")
            if previous_end is not None and start < previous_end:
                raise ValueError("service periods overlap")
            previous_end = end
        return checked

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(holidays={len(self.holidays)}, workdays={len(self.workdays)}, "
            f"known_years={sorted(self.known_years)})"
        )

    # Days and hours

    def is_working_day(self, day: date) -> bool:
        """Whether the day has service hours: listed days as listed, otherwise Monday to Friday."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def is_known_year(self, year: int) -> bool:
        return year in self.known_years

    def working_periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's service periods as UTC instants (none on a rest day)."""
        return list(self._periods(day))

    def _compute_periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        if not self.is_working_day(day):
            return ()
        return tuple(
            (
                datetime.combine(day, s, tzinfo=self.tz).astimezone(UTC),
                datetime.combine(day, e, tzinfo=self.tz).astimezone(UTC),
            )
            for s, e in self.hours
        )

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def _assumed(self, a: datetime, b: datetime) -> frozenset[int]:
        first, last = sorted((self._local_date(a), self._local_date(b)))
        return frozenset(y for y in range(first.year, last.year + 1) if y not in self.known_years)

    def is_working_time(self, instant: datetime) -> bool:
        """Whether the instant falls inside service hours (opening included, closing excluded)."""
        instant = _require_aware(instant, "instant")
        return any(s <= instant < e for s, e in self._periods(self._local_date(instant)))

    def next_working_moment(self, instant: datetime) -> datetime:
        """Return the instant itself inside service hours, else the next opening (UTC)."""
        instant = _require_aware(instant, "instant")
        day = self._local_date(instant)
        while True:
            for start, end in self._periods(day):
                if instant < end:
                    return max(start, instant)
            day += timedelta(days=1)

    # Adding time

    def add_working_time(self, start: datetime, amount: timedelta) -> Due:
        """Return the earliest instant with ``amount`` of working time since ``start``.

        A negative amount counts backwards: the latest instant with that much working time before ``start``
        (the yellow card "one working day before the deadline").
        """
        start = _require_aware(start, "start")
        if not isinstance(amount, timedelta):
            raise TypeError("amount must be a timedelta")
        if amount == timedelta():
            return Due(start)
        at = self._forward(start, amount) if amount > timedelta() else self._backward(start, -amount)
        return Due(at, self._assumed(start, at))

    def _forward(self, start: datetime, remaining: timedelta) -> datetime:
        day = self._local_date(start)
        while True:
            for period_start, period_end in self._periods(day):
                if period_end <= start:
                    continue
                begin = max(period_start, start)
                available = period_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)

    def _backward(self, start: datetime, remaining: timedelta) -> datetime:
        day = self._local_date(start)
        while True:
            for period_start, period_end in reversed(self._periods(day)):
                if period_start >= start:
                    continue
                end = min(period_end, start)
                available = end - period_start
                if remaining <= available:
                    return end - remaining
                remaining -= available
            day -= timedelta(days=1)

    def add_working_days(self, start: datetime, n: int) -> Due:
        """Return the due time ``n`` working days after ``start`` (see the module's definition)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an integer number of working days")
        return self.add_working_time(start, n * self.day_length)

    def add_working_hours(self, start: datetime, hours) -> Due:
        """Return the due time ``hours`` of service hours after ``start``."""
        return self.add_working_time(start, to_timedelta(hours))

    def add_calendar_hours(self, start: datetime, hours) -> Due:
        """Return ``start`` plus ``hours`` around the clock; no calendar is consulted."""
        return Due(_require_aware(start, "start") + to_timedelta(hours))

    def add(self, start: datetime, amount, unit: Unit | str) -> Due:
        """Return ``start`` plus ``amount`` counted in ``unit``."""
        return self._adder(Unit(unit))(start, self._duration(amount, Unit(unit)))

    def _duration(self, amount, unit: Unit) -> timedelta:
        if unit is Unit.WORKING_DAYS:
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise TypeError("working days are counted in whole days")
            return amount * self.day_length
        return to_timedelta(amount)

    def _adder(self, unit: Unit):
        if unit is Unit.HOURS:
            return lambda start, amount: Due(_require_aware(start, "start") + amount)
        return self.add_working_time

    def _measure(self, unit: Unit):
        if unit is Unit.HOURS:
            return lambda a, b: Elapsed(b - a)
        return self.working_time_between

    # Measuring time

    def working_time_between(self, a: datetime, b: datetime) -> Elapsed:
        """Return the working time from ``a`` to ``b`` (negative when ``b`` is earlier)."""
        a, b = _require_aware(a, "a"), _require_aware(b, "b")
        if b < a:
            elapsed = self.working_time_between(b, a)
            return Elapsed(-elapsed.time, elapsed.assumed_years)
        if a == b:
            return Elapsed(timedelta())
        total = timedelta()
        day, last = self._local_date(a), self._local_date(b)
        while day <= last:
            for period_start, period_end in self._periods(day):
                overlap = min(period_end, b) - max(period_start, a)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return Elapsed(total, self._assumed(a, b))

    # Pauses and extensions

    def due_with_pauses(
        self, start: datetime, duration, mode: Unit | str, pauses: Iterable[Pause]
    ) -> Due | None:
        """Return the due time with the clock stopped during pauses; None while a pause that matters is open.

        The clock counts ``duration`` (in ``mode``) from ``start``, not running while paused, so the due is
        pushed back by exactly the paused working time (calendar time for ``hours``). Pauses may overlap or
        start before ``start``; a pause beginning at or after the due changes nothing, since the time limit
        had already run out.
        """
        unit = Unit(mode)
        start = _require_aware(start, "start")
        add, measure = self._adder(unit), self._measure(unit)
        remaining = self._duration(duration, unit)
        if remaining < timedelta():
            raise ValueError("duration must not be negative")
        cursor = start
        for paused_at, resumed_at in _merged(pauses, start):
            candidate = add(cursor, remaining)
            if candidate.at <= paused_at:
                break
            remaining -= measure(cursor, paused_at).time
            if resumed_at is None:
                return None
            cursor = resumed_at
        due = add(cursor, remaining)
        if unit is Unit.HOURS:
            return due
        return Due(due.at, self._assumed(start, due.at) if due.at != start else frozenset())

    def extend(self, deadline: Due | datetime, amount, unit: Unit | str) -> Due:
        """Return a deadline moved later by ``amount`` in ``unit`` (an approved one-time extension).

        When the clock was paused, prefer ``due_with_pauses(start, duration + extension, ...)``: pauses after
        the original deadline then count as they should.
        """
        unit = Unit(unit)
        base = deadline if isinstance(deadline, Due) else Due(_require_aware(deadline, "deadline"))
        extension = self._duration(amount, unit)
        if extension < timedelta():
            raise ValueError("an extension cannot shorten the deadline")
        moved = self._adder(unit)(base.at, extension)
        return Due(moved.at, base.assumed_years | moved.assumed_years)


def _merged(pauses: Iterable[Pause], start: datetime) -> list[Pause]:
    """Sort pauses, clip them to the start and merge overlaps, so each stretch of time is counted once."""
    cleaned: list[tuple[datetime, datetime | None]] = []
    for paused_at, resumed_at in pauses:
        paused_at = _require_aware(paused_at, "paused_at")
        resumed_at = None if resumed_at is None else _require_aware(resumed_at, "resumed_at")
        if resumed_at is not None and resumed_at < paused_at:
            raise ValueError("a pause cannot resume before it starts")
        if resumed_at is not None and resumed_at <= start:
            continue
        cleaned.append((max(paused_at, start), resumed_at))
    cleaned.sort(key=lambda p: p[0])
    merged: list[Pause] = []
    for paused_at, resumed_at in cleaned:
        if merged and paused_at <= (merged[-1][1] or paused_at):
            last_paused, last_resumed = merged[-1]
            open_ended = last_resumed is None or resumed_at is None
            merged[-1] = (last_paused, None if open_ended else max(last_resumed, resumed_at))
        else:
            merged.append((paused_at, resumed_at))
    return merged
