"""SLA time limits and card rules: pure, so the rules can be read and tested apart from the database.

A policy says, for a service kind (and optionally one category of it), how long each clock may run:
accepting (签收) and completing (办结), how long an extension may be and whether returning (退单) is allowed.
The defaults are the street's starting rules (DESIGN.md); a street admin overrides them per kind or category.

Cards: the yellow card (黄牌预警) comes one working day before the deadline; for a limit of one working day or
less, or a limit counted around the clock (urgent), it comes when 80% of the limit has run. "One working day
before" a one-day limit would be the very moment the clock starts, a warning nobody can act on.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from backend.sla.calendar import Unit, WorkCalendar, to_timedelta

SERVICE_KINDS = ("urgent", "daily", "targeted", "professional")
SERVICE_KIND_LABELS = {"urgent": "紧急性", "daily": "日常性", "targeted": "针对性", "professional": "专业性"}
UNIT_LABELS = {Unit.WORKING_DAYS: "个工作日", Unit.WORKING_HOURS: "个工作小时", Unit.HOURS: "小时"}
WARNING_SHARE = Decimal("0.8")


@dataclass(frozen=True)
class Limit:
    """An amount of time counted in a unit: 5 working days, 24 hours, 0.5 hours."""

    amount: Decimal
    unit: Unit

    def __post_init__(self):
        object.__setattr__(self, "amount", Decimal(str(self.amount)))
        object.__setattr__(self, "unit", Unit(self.unit))
        if self.amount <= 0:
            raise ValueError("a limit must be positive")
        if self.unit is Unit.WORKING_DAYS and self.amount != self.amount.to_integral_value():
            raise ValueError("working days are counted in whole days")

    def calendar_amount(self):
        """The amount as WorkCalendar takes it (whole days as int, hours as Decimal)."""
        return int(self.amount) if self.unit is Unit.WORKING_DAYS else self.amount

    def label(self) -> str:
        if self.unit is Unit.HOURS and self.amount < 1:
            # Rounded, not cut down: 0.33 hours is 19.8 minutes, nearer 20 than 19. Under a minute (which the
            # policy API no longer takes, but a policy saved before may hold) in seconds, never "0分钟".
            if self.amount * 60 < 1:
                return f"{(self.amount * 3600).to_integral_value(ROUND_HALF_UP)}秒"
            return f"{(self.amount * 60).to_integral_value(ROUND_HALF_UP)}分钟"
        amount = int(self.amount) if self.amount == self.amount.to_integral_value() else self.amount
        return f"{amount}{UNIT_LABELS[self.unit]}"


@dataclass(frozen=True)
class Policy:
    """The time limits of one service kind or category; None means "not allowed"."""

    accept: Limit
    complete: Limit
    extension: Limit | None
    return_within: Limit | None


def _wd(n: int) -> Limit:
    return Limit(Decimal(n), Unit.WORKING_DAYS)


DEFAULT_POLICIES: dict[str, Policy] = {
    "urgent": Policy(
        accept=Limit(Decimal("0.5"), Unit.HOURS),
        complete=Limit(Decimal(24), Unit.HOURS),
        extension=None,
        return_within=None,
    ),
    "daily": Policy(accept=_wd(1), complete=_wd(5), extension=_wd(10), return_within=_wd(2)),
    "targeted": Policy(accept=_wd(1), complete=_wd(3), extension=_wd(3), return_within=_wd(2)),
    "professional": Policy(accept=_wd(1), complete=_wd(15), extension=_wd(10), return_within=_wd(2)),
}


def warning_at(calendar: WorkCalendar, *, due: datetime, limit: Limit) -> datetime:
    """Return when the yellow card is due for a clock running ``limit`` that falls due at ``due``.

    Counted back from the due time, so pauses (which push the due time back) move the warning with it.
    """
    if limit.unit is Unit.HOURS:
        return due - to_timedelta(limit.amount * (1 - WARNING_SHARE))
    if limit.unit is Unit.WORKING_DAYS:
        span = int(limit.amount) * calendar.day_length
    else:
        span = to_timedelta(limit.amount)
    if span > calendar.day_length:
        before = calendar.day_length
    else:
        before = to_timedelta(Decimal(span.total_seconds()) / 3600 * (1 - WARNING_SHARE))
    return calendar.add_working_time(due, -before).at


def describe_limit(limit: Limit | None) -> str:
    """Return a limit in words for people: "5个工作日", "30分钟", or "不允许"."""
    return "不允许" if limit is None else limit.label()
