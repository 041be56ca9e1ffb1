"""The pure calendar on the real 2026 notice: working days, due times, pauses, extensions, guessed years."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from backend.sla.calendar import Due, Unit, WorkCalendar, assumption_note
from tests.sla.calendar_data import as_local, calendar_2026, local, official_2026_rows

CAL = calendar_2026()


def due_local(due: Due) -> datetime:
    return as_local(due.at)


# Working days


def test_the_seed_has_the_notice_of_2026():
    rows = official_2026_rows()
    assert len(rows) == 39
    assert {kind for _, kind, _ in rows} == {"holiday", "workday"}
    assert all(d.year == 2026 for d, _, _ in rows)
    # Make-up workdays are weekends by definition.
    assert all(d.weekday() >= 5 for d, kind, _ in rows if kind == "workday")


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 10, 1), False),  # National Day, a Thursday
        (date(2026, 10, 8), True),  # Thursday after the holiday
        (date(2026, 10, 10), True),  # make-up Saturday
        (date(2026, 10, 11), False),  # ordinary Sunday
        (date(2026, 9, 20), True),  # make-up Sunday before Mid-Autumn
        (date(2026, 9, 25), False),  # Mid-Autumn, a Friday
        (date(2026, 2, 16), False),  # Spring Festival eve, a Monday
        (date(2026, 2, 14), True),  # make-up Saturday
        (date(2026, 2, 28), True),  # make-up Saturday
        (date(2026, 3, 2), True),  # ordinary Monday
        (date(2027, 1, 4), True),  # an unknown year: weekdays work
        (date(2027, 1, 2), False),  # an unknown year: weekends rest
    ],
)
def test_is_working_day(day, working):
    assert CAL.is_working_day(day) is working


def test_default_service_hours_make_a_seven_hour_day():
    assert CAL.day_length == timedelta(hours=7)
    periods = [(as_local(s).time(), as_local(e).time()) for s, e in CAL.working_periods(date(2026, 9, 21))]
    assert periods == [(time(9), time(12)), (time(13, 30), time(17, 30))]
    assert CAL.working_periods(date(2026, 10, 1)) == []


# n working days


def test_daily_order_accepted_before_national_day():
    # Wednesday 2026-09-30: the next working day is Thursday 10-08, after the seven-day holiday.
    start = local(2026, 9, 30, 10)
    accept = CAL.add_working_days(start, 1)
    assert due_local(accept) == local(2026, 10, 8, 10)
    assert accept.assumed_years == frozenset()
    # 5 working days: 10-08 Thu, 10-09 Fri, 10-10 make-up Sat, 10-12 Mon, 10-13 Tue.
    assert due_local(CAL.add_working_days(start, 5)) == local(2026, 10, 13, 10)


def test_make_up_sunday_counts_as_a_working_day():
    # Friday 09-18 + 1: Saturday rests, Sunday 09-20 is a make-up workday.
    assert due_local(CAL.add_working_days(local(2026, 9, 18, 15), 1)) == local(2026, 9, 20, 15)
    # Thursday 09-24 + 1: Mid-Autumn Friday and the weekend rest.
    assert due_local(CAL.add_working_days(local(2026, 9, 24, 10), 1)) == local(2026, 9, 28, 10)


def test_spring_festival():
    start = local(2026, 2, 13, 10)  # Friday before the festival
    assert due_local(CAL.add_working_days(start, 1)) == local(2026, 2, 14, 10)  # make-up Saturday
    assert due_local(CAL.add_working_days(start, 2)) == local(2026, 2, 24, 10)  # 15th–23rd rest
    assert due_local(CAL.add_working_days(start, 6)) == local(2026, 2, 28, 10)  # make-up Saturday
    assert due_local(CAL.add_working_days(start, 7)) == local(2026, 3, 2, 10)


def test_start_outside_service_hours_is_due_at_a_close():
    # Friday evening: counted from Sunday's (make-up) opening, due at its close.
    assert due_local(CAL.add_working_days(local(2026, 9, 18, 18), 1)) == local(2026, 9, 20, 17, 30)
    # Saturday: counted from Monday's opening.
    assert due_local(CAL.add_working_days(local(2026, 9, 12, 11), 1)) == local(2026, 9, 14, 17, 30)
    # At the opening itself the whole day is available.
    assert due_local(CAL.add_working_days(local(2026, 9, 14, 9), 1)) == local(2026, 9, 14, 17, 30)
    # Over lunch: counted from 13:30, so due by the next day's noon break.
    assert due_local(CAL.add_working_days(local(2026, 9, 14, 12, 10), 1)) == local(2026, 9, 15, 12)


def test_zero_working_days_is_the_start_itself():
    start = local(2026, 10, 1, 3)
    assert CAL.add_working_days(start, 0) == Due(start.astimezone(UTC))


def test_a_2027_due_is_flagged_as_assumed():
    due = CAL.add_working_days(local(2026, 12, 31, 10), 1)
    # The 2027 notice is not out: New Year's Day is taken as an ordinary Friday.
    assert due_local(due) == local(2027, 1, 1, 10)
    assert due.assumed_years == frozenset({2027})
    assert due.assumed
    assert "2027年" in due.note
    assert CAL.add_working_days(local(2026, 12, 30, 10), 1).assumed_years == frozenset()


def test_a_known_2027_holiday_moves_the_due_and_clears_the_flag():
    cal = WorkCalendar(holidays=[date(2027, 1, 1)], known_years=[2026, 2027])
    due = cal.add_working_days(local(2026, 12, 31, 10), 1)
    assert due_local(due) == local(2027, 1, 4, 10)
    assert due.assumed_years == frozenset()


def test_years_before_the_first_known_year_are_assumed_too():
    assert CAL.add_working_days(local(2025, 12, 30, 10), 1).assumed_years == frozenset({2025})


def test_negative_working_days_count_back_for_the_yellow_card():
    deadline = CAL.add_working_days(local(2026, 9, 30, 10), 5)  # 2026-10-13 10:00
    assert due_local(CAL.add_working_days(deadline.at, -1)) == local(2026, 10, 12, 10)
    # From a close, one working day back is that day's opening.
    assert due_local(CAL.add_working_days(local(2026, 10, 8, 17, 30), -1)) == local(2026, 10, 8, 9)
    # Back across National Day.
    assert due_local(CAL.add_working_days(local(2026, 10, 8, 10), -1)) == local(2026, 9, 30, 10)


# Working hours and calendar hours


def test_add_working_hours():
    assert due_local(CAL.add_working_hours(local(2026, 9, 21, 16, 30), 2)) == local(2026, 9, 22, 10)
    assert due_local(CAL.add_working_hours(local(2026, 9, 21, 11, 30), 1)) == local(2026, 9, 21, 14)
    assert due_local(CAL.add_working_hours(local(2026, 9, 21, 12, 10), Decimal("0.5"))) == local(
        2026, 9, 21, 14
    )
    assert due_local(CAL.add_working_hours(local(2026, 9, 30, 17), 1.5)) == local(2026, 10, 8, 10)
    assert due_local(CAL.add_working_hours(local(2026, 9, 21, 9), timedelta(minutes=7))) == local(
        2026, 9, 21, 9, 7
    )


def test_add_calendar_hours_runs_around_the_clock():
    # Urgent orders: 30 minutes to accept, even at 3 a.m. on National Day.
    due = CAL.add_calendar_hours(local(2026, 10, 1, 3), 0.5)
    assert due_local(due) == local(2026, 10, 1, 3, 30)
    assert due.assumed_years == frozenset()
    assert due_local(CAL.add_calendar_hours(local(2027, 10, 1, 3), 24)) == local(2027, 10, 2, 3)
    assert due_local(CAL.add(local(2026, 10, 1, 3), 24, "hours")) == local(2026, 10, 2, 3)


def test_add_dispatches_on_the_unit():
    start = local(2026, 9, 30, 10)
    assert CAL.add(start, 1, Unit.WORKING_DAYS) == CAL.add_working_days(start, 1)
    assert CAL.add(start, 3, "working_hours") == CAL.add_working_hours(start, 3)
    with pytest.raises(TypeError):
        CAL.add(start, 1.5, Unit.WORKING_DAYS)
    with pytest.raises(ValueError):
        CAL.add(start, 1, "fortnights")


def test_working_time_between():
    assert CAL.working_time_between(local(2026, 9, 21, 9), local(2026, 9, 21, 17, 30)).time == timedelta(
        hours=7
    )
    across = CAL.working_time_between(local(2026, 9, 30, 17), local(2026, 10, 8, 9, 30))
    assert across.time == timedelta(hours=1)
    assert across.assumed_years == frozenset()
    back = CAL.working_time_between(local(2026, 10, 8, 9, 30), local(2026, 9, 30, 17))
    assert back.time == -timedelta(hours=1)
    assert CAL.working_time_between(local(2026, 10, 2), local(2026, 10, 5)).time == timedelta()
    assert CAL.working_time_between(local(2026, 12, 31, 9), local(2027, 1, 1, 10)).assumed_years == {2027}
    assert CAL.working_time_between(local(2026, 9, 21, 9), local(2026, 9, 22, 9)).total_seconds() == 7 * 3600


# Pauses


def test_open_pause_means_no_deadline_yet():
    start = local(2026, 9, 21, 10)
    assert CAL.due_with_pauses(start, 1, "working_days", [(local(2026, 9, 21, 11), None)]) is None


def test_pause_pushes_the_due_by_the_paused_working_time():
    start = local(2026, 9, 21, 10)  # Monday
    # Paused 11:00–14:00: 1 h of morning and 30 min of afternoon service.
    due = CAL.due_with_pauses(start, 1, "working_days", [(local(2026, 9, 21, 11), local(2026, 9, 21, 14))])
    assert due_local(due) == local(2026, 9, 22, 11, 30)


def test_pause_after_the_due_changes_nothing_even_open():
    start = local(2026, 9, 21, 10)
    plain = CAL.add_working_days(start, 1)
    assert CAL.due_with_pauses(start, 1, "working_days", [(local(2026, 9, 23, 10), None)]) == plain
    assert CAL.due_with_pauses(start, 1, "working_days", [(plain.at, None)]) == plain


def test_pauses_may_overlap_or_precede_the_start():
    start = local(2026, 9, 21, 10)
    pauses = [
        (local(2026, 9, 21, 8), local(2026, 9, 21, 11)),  # only 10:00–11:00 counts
        (local(2026, 9, 21, 10, 30), local(2026, 9, 21, 11)),  # inside the first
        (local(2026, 9, 20, 8), local(2026, 9, 20, 9)),  # entirely before the start
    ]
    due = CAL.due_with_pauses(start, 1, "working_days", pauses)
    assert due_local(due) == local(2026, 9, 22, 11)


def test_urgent_pauses_count_calendar_time():
    start = local(2026, 10, 1, 3)
    due = CAL.due_with_pauses(start, 24, "hours", [(local(2026, 10, 1, 4), local(2026, 10, 1, 6))])
    assert due_local(due) == local(2026, 10, 2, 5)


def test_pause_that_never_resumes_before_it_starts_is_refused():
    with pytest.raises(ValueError):
        CAL.due_with_pauses(
            local(2026, 9, 21, 10), 1, "working_days", [(local(2026, 9, 21, 11), local(2026, 9, 21, 10))]
        )


# Extensions


def test_extension_adds_in_the_same_unit():
    # 09-29, 09-30, 10-08, 10-09, then the make-up Saturday 10-10.
    deadline = CAL.add_working_days(local(2026, 9, 28, 10), 5)
    assert due_local(deadline) == local(2026, 10, 10, 10)
    extended = CAL.extend(deadline, 10, "working_days")
    # 10-12..16, 10-19..23.
    assert due_local(extended) == local(2026, 10, 23, 10)
    assert CAL.extend(deadline.at, 2, "working_hours") == CAL.add_working_hours(deadline.at, 2)
    assert CAL.extend(local(2026, 12, 31, 10), 1, "working_days").assumed_years == {2027}
    with pytest.raises(ValueError):
        CAL.extend(deadline, -1, "working_days")


# Inputs and configuration


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        CAL.add_working_days(datetime(2026, 9, 30, 10), 1)
    with pytest.raises(ValueError):
        CAL.working_time_between(datetime(2026, 9, 30, 10), local(2026, 9, 30, 11))


def test_any_zone_in_utc_out():
    start = datetime(2026, 9, 30, 2, tzinfo=UTC)  # 10:00 in Beijing
    due = CAL.add_working_days(start, 1)
    assert due.at.tzinfo is UTC
    assert due.at == datetime(2026, 10, 8, 2, tzinfo=UTC)


def test_service_hours_are_configurable():
    cal = calendar_2026(hours=[(time(14), time(18)), (time(8, 30), time(12))])
    assert cal.day_length == timedelta(hours=7, minutes=30)
    assert due_local(cal.add_working_days(local(2026, 9, 18, 19), 1)) == local(2026, 9, 20, 18)
    assert due_local(cal.add_working_hours(local(2026, 9, 21, 11), 2)) == local(2026, 9, 21, 15)


@pytest.mark.parametrize(
    "hours",
    [[], [(time(12), time(9))], [(time(9), time(12)), (time(11), time(14))]],
)
def test_impossible_service_hours_are_refused(hours):
    with pytest.raises(ValueError):
        WorkCalendar(hours=hours)


def test_a_day_cannot_be_both_holiday_and_workday():
    with pytest.raises(ValueError):
        WorkCalendar(holidays=[date(2026, 10, 10)], workdays=[date(2026, 10, 10)])


def test_assumption_note():
    assert assumption_note([]) is None
    assert assumption_note([2028, 2027]) == (
        "2027、2028年的放假安排尚未公布，暂按周末休息、工作日上班计算，公布后期限可能调整。"
    )


def test_is_working_time_and_next_working_moment():
    assert CAL.is_working_time(local(2026, 9, 21, 9))
    assert not CAL.is_working_time(local(2026, 9, 21, 17, 30))
    assert as_local(CAL.next_working_moment(local(2026, 9, 30, 17, 45))) == local(2026, 10, 8, 9)
    assert as_local(CAL.next_working_moment(local(2026, 9, 21, 10))) == local(2026, 9, 21, 10)
