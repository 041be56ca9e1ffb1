"""The card rules, pure: when the yellow card comes for each kind of limit."""

from decimal import Decimal

import pytest

from backend.sla.calendar import Unit, WorkCalendar
from backend.sla.rules import DEFAULT_POLICIES, Limit, warning_at
from tests.sla.calendar_data import calendar_2026, local


@pytest.fixture
def calendar() -> WorkCalendar:
    return calendar_2026()


def test_urgent_warns_at_eighty_percent_around_the_clock(calendar):
    due = local(2026, 10, 1, 2, 30)
    assert warning_at(calendar, due=due, limit=Limit("0.5", Unit.HOURS)) == local(2026, 10, 1, 2, 24)
    assert warning_at(calendar, due=local(2026, 10, 2, 2), limit=Limit(24, Unit.HOURS)) == local(
        2026, 10, 1, 21, 12
    )


def test_a_multi_day_limit_warns_one_working_day_before_across_a_holiday(calendar):
    # Due Thursday 2026-10-08 10:00, the first working day after National Day: one working day earlier is
    # Wednesday 2026-09-30 10:00, before the holiday.
    due = local(2026, 10, 8, 10)
    assert warning_at(calendar, due=due, limit=Limit(5, Unit.WORKING_DAYS)) == local(2026, 9, 30, 10)


def test_a_one_day_limit_warns_at_eighty_percent_of_its_working_time(calendar):
    # 1 working day = 7 h; 20% = 84 min of service hours before Friday 10:00: 60 min that morning, and 24 min
    # before Thursday's 17:30 close.
    due = local(2026, 10, 9, 10)
    assert warning_at(calendar, due=due, limit=Limit(1, Unit.WORKING_DAYS)) == local(2026, 10, 8, 17, 6)


def test_working_hours_limits_warn_at_eighty_percent(calendar):
    due = local(2026, 11, 25, 17, 30)
    assert warning_at(calendar, due=due, limit=Limit(5, Unit.WORKING_HOURS)) == local(2026, 11, 25, 16, 30)


def test_limits_reject_nonsense():
    with pytest.raises(ValueError):
        Limit(0, Unit.HOURS)
    with pytest.raises(ValueError):
        Limit("1.5", Unit.WORKING_DAYS)


def test_limits_under_an_hour_are_labelled_in_their_minutes_rounded():
    assert Limit("0.33", Unit.HOURS).label() == "20分钟"  # 19.8 minutes
    assert Limit("0.25", Unit.HOURS).label() == "15分钟"
    assert Limit("0.02", Unit.HOURS).label() == "1分钟"  # 1.2 minutes
    assert Limit("0.99", Unit.HOURS).label() == "59分钟"  # 59.4 minutes
    # Under a minute only a policy saved before the API refused it can hold: in seconds, never "0分钟".
    assert Limit("0.01", Unit.HOURS).label() == "36秒"


def test_defaults_follow_the_design_table():
    assert DEFAULT_POLICIES["urgent"].accept == Limit(Decimal("0.5"), Unit.HOURS)
    assert DEFAULT_POLICIES["urgent"].extension is None and DEFAULT_POLICIES["urgent"].return_within is None
    assert DEFAULT_POLICIES["daily"].complete.label() == "5个工作日"
    assert DEFAULT_POLICIES["professional"].complete.amount == 15
    assert DEFAULT_POLICIES["urgent"].accept.label() == "30分钟"
