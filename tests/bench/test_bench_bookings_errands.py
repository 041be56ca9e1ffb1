"""The booking-contention and agent-queue rows' pure helpers: bookable dates, slot plans, sizing, the
after-run check, the queue cursor, row selection. No database and no servers."""

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from backend.errands.states import AGENT_STATES, STATES
from backend.pagination import decode_parts
from bench import bookings, errands_scale
from bench.report import RowResult
from bench.rows import ROWS, Row, check_rows, select_rows
from bench.wrk import WrkResult, parse_wrk_output
from tests.bench.test_bench_parsing import SAMPLES

TODAY = date(2026, 11, 25)  # a Wednesday


def test_bookable_days_follow_the_weekday_from_tomorrow():
    wednesdays = bookings.bookable_days(TODAY, set(), 3, days_ahead=30)
    # Today is skipped (its slots may have started): the next Wednesday is the first.
    assert wednesdays == [date(2026, 12, 2), date(2026, 12, 9), date(2026, 12, 16), date(2026, 12, 23)]
    thursdays = bookings.bookable_days(TODAY, set(), 4, days_ahead=9)
    assert thursdays == [date(2026, 11, 26), date(2026, 12, 3)]  # the window: today and 8 days
    assert all(d.isoweekday() == 4 for d in thursdays)


def test_bookable_days_leave_holidays_and_the_window_out():
    days = bookings.bookable_days(TODAY, {date(2026, 12, 9)}, 3, days_ahead=30)
    assert date(2026, 12, 9) not in days
    last = TODAY + timedelta(days=29)
    assert all(TODAY < d <= last for d in bookings.bookable_days(TODAY, set(), 5, days_ahead=30))
    assert bookings.bookable_days(TODAY, set(), 3, days_ahead=1) == []


def test_slot_starts_stay_within_the_day():
    starts = [bookings.slot_start(k) for k in range(2000)]
    assert all(time(8, 0) <= s <= time(17, 59) for s in starts)
    assert len(set(starts[:80])) == 80


def test_slot_plan_covers_what_a_run_needs():
    wanted = bookings.occurrences_needed(10)
    plan = bookings.slot_plan(TODAY, set(), wanted)
    assert sum(len(days) for _, _, days in plan) >= wanted
    assert all(d.isoweekday() == weekday for weekday, _, days in plan for d in days)
    with pytest.raises(RuntimeError):
        bookings.slot_plan(TODAY, {TODAY + timedelta(days=n) for n in range(100)}, 10)


def test_occurrences_sized_for_the_rate_ceiling():
    # 1,500 requests/s for 12 s, 24 residents per occurrence, and a few spare.
    assert bookings.occurrences_needed(10, bookers=24, rate=1500) == 760
    assert bookings.occurrences_needed(1, bookers=24, rate=1500) > 1500 * 3 / 24


def test_after_run_check_finds_overbooking_and_miscounts():
    clean = {"overbooked": 0, "miscounted": 0, "bookings": 800, "occurrences": 100}
    assert bookings.check_problems(clean, created=795, in_flight=16) == []
    problems = bookings.check_problems({**clean, "overbooked": 2, "miscounted": 1}, 800, 16)
    assert len(problems) == 2
    assert "more bookings than their capacity" in problems[0]
    # More bookings than 201s plus the requests in flight, or fewer than the 201s: something is wrong.
    assert bookings.check_problems(clean, created=700, in_flight=16)
    assert bookings.check_problems(clean, created=801, in_flight=16)


def _result(statuses: dict | None, non_2xx: int = 0) -> WrkResult:
    return WrkResult(
        requests=304, duration_s=3, requests_per_sec=100, bytes_read=1, latency_avg_ms=1, latency_max_ms=2,
        non_2xx=non_2xx, statuses=statuses,
    )  # fmt: skip


def test_booking_statuses_are_parsed_and_409s_are_right_answers():
    text = (SAMPLES / "hello.txt").read_text() + "bench: status 201=96 409=208 other=0 exhausted=0\n"
    assert parse_wrk_output(text).statuses == {"201": 96, "409": 208, "other": 0, "exhausted": 0}
    row = next(r for r in ROWS if r.name == "appointments-book-contention")
    assert not RowResult(row, _result({"201": 96, "409": 208, "other": 0}, non_2xx=208)).has_errors
    assert RowResult(row, _result({"201": 96, "409": 204, "other": 4}, non_2xx=212)).has_errors
    assert RowResult(row, _result({"201": 96, "409": 208}, 208), problem="overbooked").has_errors


def test_queue_cursor_decodes_as_the_view_reads_it():
    due = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    cursor = errands_scale.encode_queue_cursor(due, 4242)
    raw_due, errand_id = decode_parts(cursor, 2)
    assert datetime.fromisoformat(raw_due) == due
    assert datetime.fromisoformat(raw_due).tzinfo == UTC
    assert errand_id == 4242


def test_generated_states_are_the_apps():
    assert set(errands_scale.OPEN_WEIGHTS) | set(errands_scale.FINISHED_WEIGHTS) <= set(STATES)
    assert set(errands_scale.OPEN_WEIGHTS) >= AGENT_STATES
    assert set(STATES) >= errands_scale.NO_DEADLINE_STATES
    sql = errands_scale.state_sql(errands_scale.FINISHED_WEIGHTS, "x.draw")
    assert sql.startswith("CASE WHEN x.draw < 0.85 THEN 'completed'") and sql.endswith("ELSE 'failed' END")


def test_rows_selectable_by_domain():
    check_rows(ROWS)
    booking = {r.name for r in select_rows(ROWS, ["appointments"])}
    assert booking == {"appointments-book-contention", "baseline-insert"}
    queue = {r.name for r in select_rows(ROWS, ["errands"])}
    assert queue == {"errands-agent-queue-first", "errands-agent-queue-deep", "baseline-select20"}
    by_name = {r.name: r for r in ROWS}
    assert by_name["appointments-book-contention"].script == "appointments_book.lua"
    assert by_name["appointments-book-contention"].expect_conflicts
    assert "{cursor}" in by_name["errands-agent-queue-deep"].path


def test_a_mistyped_dataset_is_caught():
    with pytest.raises(ValueError):
        check_rows([Row("x", "app", "GET", "/x", dataset="nope")])
    with pytest.raises(ValueError):
        check_rows([Row("x", "app", "GET", "/x", dataset="errands", phased=True)])
