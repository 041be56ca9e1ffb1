"""Properties of the due-time arithmetic over the real 2026 calendar and the assumed 2027 beyond it."""

from datetime import date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.clock import LOCAL_TZ
from backend.sla.calendar import Unit
from tests.sla.calendar_data import calendar_2026

CAL = calendar_2026()
# Derandomized: the same examples on every run and machine; no deadline, the walk is per day.
PROPERTY = settings(
    deadline=None,
    max_examples=200,
    derandomize=True,
)

# December 2025 to the end of 2027: the known year, unknown years on both sides, and the year boundaries.
instants = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 12, 31), timezones=st.just(LOCAL_TZ)
)
working_days = st.integers(min_value=0, max_value=30)
# Minutes, so services see amounts that are not whole hours.
hour_amounts = st.integers(min_value=0, max_value=60 * 7 * 20).map(lambda m: timedelta(minutes=m))
units = st.sampled_from(list(Unit))


def amount_for(unit: Unit, n: int):
    """The same small number as an amount in each unit (whole days, or minutes of hours)."""
    return n if unit is Unit.WORKING_DAYS else timedelta(minutes=n * 97)


@PROPERTY
@given(a=instants, b=instants, unit=units, n=st.integers(min_value=0, max_value=25))
def test_later_start_is_never_due_earlier(a, b, unit, n):
    early, late = sorted((a, b))
    assert CAL.add(early, amount_for(unit, n), unit).at <= CAL.add(late, amount_for(unit, n), unit).at


@PROPERTY
@given(start=instants, unit=units, m=st.integers(0, 25), n=st.integers(0, 25))
def test_more_time_is_never_due_earlier(start, unit, m, n):
    small, large = sorted((m, n))
    assert (
        CAL.add(start, amount_for(unit, small), unit).at <= CAL.add(start, amount_for(unit, large), unit).at
    )


@PROPERTY
@given(start=instants, n=st.integers(min_value=1, max_value=30))
def test_working_days_land_on_a_working_day_within_service_hours(start, n):
    due = CAL.add_working_days(start, n)
    day = due.at.astimezone(LOCAL_TZ).date()
    assert CAL.is_working_day(day)
    # Inside a period or at its close, never at an opening: that instant belongs to the previous close.
    assert any(s < due.at <= e for s, e in CAL.working_periods(day))


@PROPERTY
@given(start=instants, n=working_days)
def test_n_working_days_are_n_days_of_service_hours(start, n):
    due = CAL.add_working_days(start, n)
    assert CAL.working_time_between(start, due.at).time == n * CAL.day_length


@PROPERTY
@given(start=instants, hours=hour_amounts)
def test_working_time_between_inverts_add_working_hours(start, hours):
    due = CAL.add_working_hours(start, hours)
    elapsed = CAL.working_time_between(start, due.at)
    assert elapsed.time == hours
    assert elapsed.assumed_years == due.assumed_years


@PROPERTY
@given(start=instants, hours=hour_amounts)
def test_counting_back_undoes_counting_forward(start, hours):
    due = CAL.add_working_hours(start, hours)
    back = CAL.add_working_hours(due.at, -hours)
    assert CAL.working_time_between(back.at, due.at).time == hours
    # Back at the start, or across service-free time from it (a start at night comes back at the opening).
    assert CAL.working_time_between(start, back.at).time == timedelta()


@PROPERTY
@given(start=instants, hours=hour_amounts)
def test_assumed_years_are_exactly_the_unknown_years_reached(start, hours):
    due = CAL.add_working_hours(start, hours)
    if hours:
        reached = set(range(start.year, due.at.astimezone(LOCAL_TZ).year + 1))
        assert due.assumed_years == reached - {2026}


# Pauses


@st.composite
def rest_stretches(draw):
    """A stretch of time with no service hours in it: a night, a lunch break or a whole rest day."""
    day = draw(st.dates(min_value=date(2025, 12, 1), max_value=date(2027, 12, 31)))
    if not CAL.is_working_day(day):
        begin, end = _at(day, time(0)), _at(day + timedelta(days=1), time(0))
    else:
        gap = draw(st.sampled_from([(time(0), time(9)), (time(12), time(13, 30)), (time(17, 30), None)]))
        begin = _at(day, gap[0])
        end = _at(day, gap[1]) if gap[1] else _at(day + timedelta(days=1), time(0))
    length = int((end - begin).total_seconds())
    first = draw(st.integers(0, length))
    second = draw(st.integers(0, length))
    low, high = sorted((first, second))
    return begin + timedelta(seconds=low), begin + timedelta(seconds=high)


def _at(day: date, clock_time: time) -> datetime:
    return datetime.combine(day, clock_time, tzinfo=LOCAL_TZ)


@st.composite
def closed_pauses(draw, start: datetime, max_count: int = 4):
    """Closed pauses around and after the start, possibly overlapping."""
    pauses = []
    for _ in range(draw(st.integers(0, max_count))):
        paused = start + timedelta(minutes=draw(st.integers(-600, 60 * 24 * 20)))
        pauses.append((paused, paused + timedelta(minutes=draw(st.integers(0, 60 * 24 * 5)))))
    return pauses


@PROPERTY
@given(
    start=instants,
    unit=st.sampled_from([Unit.WORKING_DAYS, Unit.WORKING_HOURS]),
    n=st.integers(0, 25),
    pause=rest_stretches(),
)
def test_a_pause_outside_service_hours_changes_nothing(start, unit, n, pause):
    amount = amount_for(unit, n)
    assert CAL.due_with_pauses(start, amount, unit, [pause]) == CAL.add(start, amount, unit)


@PROPERTY
@given(data=st.data(), start=instants, unit=units, n=st.integers(0, 25))
def test_the_due_moves_by_exactly_the_paused_time(data, start, unit, n):
    amount = amount_for(unit, n)
    pauses = data.draw(closed_pauses(start))
    due = CAL.due_with_pauses(start, amount, unit, pauses)
    # The paused time that counts is the union of the pauses between the start and the due.
    measure = (
        (lambda a, b: b - a) if unit is Unit.HOURS else (lambda a, b: CAL.working_time_between(a, b).time)
    )
    paused = timedelta()
    cursor = start
    for paused_at, resumed_at in sorted(pauses):
        low, high = max(paused_at, cursor), min(resumed_at, due.at)
        if high > low:
            paused += measure(low, high)
            cursor = high
    duration = n * CAL.day_length if unit is Unit.WORKING_DAYS else amount
    pushed = CAL.add(start, duration + paused, Unit.HOURS if unit is Unit.HOURS else Unit.WORKING_HOURS)
    assert due.at == pushed.at


@PROPERTY
@given(data=st.data(), start=instants, unit=units, n=st.integers(0, 25), cut=st.floats(0, 1))
def test_splitting_a_pause_in_two_changes_nothing(data, start, unit, n, cut):
    amount = amount_for(unit, n)
    pauses = data.draw(closed_pauses(start, max_count=3))
    paused_at = start + timedelta(minutes=data.draw(st.integers(-600, 60 * 24 * 20)))
    resumed_at = paused_at + timedelta(minutes=data.draw(st.integers(0, 60 * 24 * 5)))
    middle = paused_at + (resumed_at - paused_at) * cut
    whole = CAL.due_with_pauses(start, amount, unit, [*pauses, (paused_at, resumed_at)])
    split = CAL.due_with_pauses(start, amount, unit, [*pauses, (paused_at, middle), (middle, resumed_at)])
    assert whole == split
    open_whole = CAL.due_with_pauses(start, amount, unit, [*pauses, (paused_at, None)])
    open_split = CAL.due_with_pauses(start, amount, unit, [*pauses, (paused_at, middle), (middle, None)])
    assert open_whole == open_split


@PROPERTY
@given(data=st.data(), start=instants, unit=units, n=st.integers(0, 25))
def test_pauses_never_bring_the_due_forward(data, start, unit, n):
    amount = amount_for(unit, n)
    due = CAL.due_with_pauses(start, amount, unit, data.draw(closed_pauses(start)))
    assert due.at >= CAL.add(start, amount, unit).at
