"""The calendar as data: the API, the seed, and the per-process cache that follows every change."""

import secrets
from datetime import date, time

import pytest
import sqlalchemy as sa

from backend.db import db
from backend.sla import service
from backend.sla.models import CalendarDay, CalendarRevision, CalendarYear, ServicePeriod
from tests.sla.calendar_data import local, official_2026_rows
from tests.worker_process import run_queued_behind

DUE_2027 = {"start": "2026-12-31T10:00:00+08:00", "amount": "1", "unit": "working_days"}


@pytest.fixture
def seeded():
    return service.seed_official_calendar()


# Reading


def test_seed_loads_the_2026_notice_once(seeded):
    assert seeded == {"years": [2026], "days": 39}
    assert service.seed_official_calendar() == {"years": [], "days": 0}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarDay)) == 39
    assert db.session.get(CalendarYear, 2026).official


def test_seed_never_undoes_an_admin(world, seeded):
    admin = world.users["street_admin"]
    service.delete_day(actor=admin, day=date(2026, 10, 7))
    service.set_day(actor=admin, day=date(2026, 10, 1), kind="holiday", name="国庆节")
    assert service.seed_official_calendar() == {"years": [], "days": 0}
    assert db.session.get(CalendarDay, date(2026, 10, 7)) is None
    assert db.session.get(CalendarDay, date(2026, 10, 1)).name == "国庆节"


def test_seed_keeps_days_entered_before_it(world):
    service.set_day(actor=world.users["street_admin"], day=date(2026, 10, 9), kind="holiday", name="试行")
    assert service.seed_official_calendar() == {"years": [2026], "days": 39}
    assert db.session.get(CalendarDay, date(2026, 10, 9)).name == "试行"


def test_anyone_signed_in_reads_a_year(client, auth, seeded):
    response = client.get("/api/v1/calendar/days", query_string={"year": 2026}, headers=auth("resident_a1"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["year"] == 2026
    assert body["known"] is True
    assert [i["date"] for i in body["items"]] == sorted(d.isoformat() for d, _, _ in official_2026_rows())
    assert body["items"][0] == {
        "date": "2026-01-01",
        "kind": "holiday",
        "kind_label": "放假",
        "name": "元旦 New Year",
        "updated_at": body["items"][0]["updated_at"],
    }
    assert body["items"][0]["updated_at"].endswith("+08:00")
    assert {i["kind_label"] for i in body["items"]} == {"放假", "调休上班"}


def test_an_unknown_year_is_said_so(client, auth, seeded):
    body = client.get(
        "/api/v1/calendar/days", query_string={"year": 2027}, headers=auth("resident_a1")
    ).get_json()
    assert body == {"year": 2027, "known": False, "note": None, "items": []}


def test_reading_needs_a_sign_in(client):
    assert client.get("/api/v1/calendar/days").status_code == 401
    assert client.get("/api/v1/calendar/due", query_string=DUE_2027).status_code == 401


def test_default_year_is_this_year(client, auth):
    response = client.get("/api/v1/calendar/days", headers=auth("resident_a1"))
    assert response.status_code == 200
    assert 2000 <= response.get_json()["year"] <= 2100


@pytest.mark.parametrize("year", ["1999", "abc", "2101"])
def test_bad_year_query_is_422(client, auth, year):
    response = client.get("/api/v1/calendar/days", query_string={"year": year}, headers=auth("resident_a1"))
    assert response.status_code == 422
    assert "year" in response.get_json()["details"]


# Editing


@pytest.mark.parametrize("who", ["resident_a1", "secretary_a", "org_admin", "grid_worker_a1"])
def test_only_street_admins_edit(client, auth, who):
    headers = auth(who)
    put = client.put("/api/v1/calendar/days/2027-01-01", json={"kind": "holiday"}, headers=headers)
    assert put.status_code == 403
    assert client.delete("/api/v1/calendar/days/2027-01-01", headers=headers).status_code == 403
    year = client.put("/api/v1/calendar/years/2027", json={"official": True}, headers=headers)
    assert year.status_code == 403
    assert db.session.get(CalendarDay, date(2027, 1, 1)) is None
    hours = client.put("/api/v1/calendar/hours", json={"periods": SUMMER_HOURS}, headers=headers)
    assert hours.status_code == 403
    assert db.session.scalars(sa.select(ServicePeriod)).all() == []


def test_street_admin_sets_and_deletes_a_day(client, auth, world):
    headers = auth("street_admin")
    put = client.put(
        "/api/v1/calendar/days/2027-01-01", json={"kind": "holiday", "name": "元旦"}, headers=headers
    )
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["kind_label"] == "放假"
    row = db.session.get(CalendarDay, date(2027, 1, 1))
    assert (row.kind, row.name, row.updated_by_id) == ("holiday", "元旦", world.users["street_admin"].id)
    again = client.put(
        "/api/v1/calendar/days/2027-01-01", json={"kind": "holiday", "name": "元旦节"}, headers=headers
    )
    assert again.get_json()["name"] == "元旦节"
    assert client.delete("/api/v1/calendar/days/2027-01-01", headers=headers).status_code == 204
    gone = client.delete("/api/v1/calendar/days/2027-01-01", headers=headers)
    assert gone.status_code == 404
    assert gone.get_json()["code"] == "calendar_day_not_found"


@pytest.mark.parametrize(
    ("day", "body", "field"),
    [
        ("2027-01-01", {"kind": "vacation"}, "kind"),
        ("2027-01-01", {}, "kind"),
        ("2027-01-04", {"kind": "workday"}, "kind"),  # a Monday works anyway
        ("2027-01-01", {"kind": "holiday", "name": "长" * 65}, "name"),
        ("2027-01-01", {"kind": "holiday", "extra": 1}, "extra"),
        ("2026-02-30", {"kind": "holiday"}, "date"),
        ("not-a-date", {"kind": "holiday"}, "date"),
        ("20270101", {"kind": "holiday"}, "date"),
        ("1999-01-01", {"kind": "holiday"}, "date"),
    ],
)
def test_bad_day_edits_are_422_naming_the_field(client, auth, day, body, field):
    response = client.put(f"/api/v1/calendar/days/{day}", json=body, headers=auth("street_admin"))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["details"]


def test_bad_date_in_a_delete_is_422(client, auth):
    response = client.delete("/api/v1/calendar/days/2026-13-01", headers=auth("street_admin"))
    assert response.status_code == 422
    assert "date" in response.get_json()["details"]


def test_make_up_workday_on_a_weekend_is_accepted(client, auth):
    response = client.put(
        "/api/v1/calendar/days/2027-02-20",
        json={"kind": "workday", "name": "春节"},
        headers=auth("street_admin"),
    )
    assert response.status_code == 200
    assert response.get_json()["kind_label"] == "调休上班"


def test_street_admin_marks_a_year(client, auth):
    headers = auth("street_admin")
    response = client.put(
        "/api/v1/calendar/years/2027",
        json={"official": True, "note": "国办发明电〔2026〕X号"},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.get_json()["official"] is True
    listed = client.get("/api/v1/calendar/days", query_string={"year": 2027}, headers=headers).get_json()
    assert listed["known"] is True
    assert listed["note"] == "国办发明电〔2026〕X号"
    client.put("/api/v1/calendar/years/2027", json={"official": False}, headers=headers)
    assert (
        client.get("/api/v1/calendar/days", query_string={"year": 2027}, headers=headers).get_json()["known"]
        is False
    )


@pytest.mark.parametrize(("path", "status"), [("1999", 422), ("abc", 404), ("2027", 422)])
def test_bad_year_edits(client, auth, path, status):
    body = {"official": "maybe"} if path == "2027" else {"official": True}
    response = client.put(f"/api/v1/calendar/years/{path}", json=body, headers=auth("street_admin"))
    assert response.status_code == status
    assert response.is_json


# Due times


def test_due_in_a_known_year(client, auth, seeded):
    response = client.get(
        "/api/v1/calendar/due",
        query_string={"start": "2026-09-30T10:00:00+08:00", "amount": 5, "unit": "working_days"},
        headers=auth("resident_a1"),
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "start": "2026-09-30T10:00:00+08:00",
        "amount": 5.0,
        "unit": "working_days",
        "due_at": "2026-10-13T10:00:00+08:00",
        "assumed_years": [],
        "note": None,
    }


def test_due_in_hours_and_naive_start_taken_as_beijing_time(client, auth, seeded):
    headers = auth("resident_a1")
    urgent = client.get(
        "/api/v1/calendar/due",
        query_string={"start": "2026-10-01T03:00:00", "amount": "0.5", "unit": "hours"},
        headers=headers,
    ).get_json()
    assert urgent["due_at"] == "2026-10-01T03:30:00+08:00"
    working = client.get(
        "/api/v1/calendar/due",
        query_string={"start": "2026-09-30T01:00:00Z", "amount": "7.5", "unit": "working_hours"},
        headers=headers,
    ).get_json()
    assert working["due_at"] == "2026-10-08T09:30:00+08:00"


def test_due_defaults_to_now(client, auth):
    response = client.get(
        "/api/v1/calendar/due", query_string={"amount": 1, "unit": "hours"}, headers=auth("resident_a1")
    )
    assert response.status_code == 200
    assert response.get_json()["due_at"].endswith("+08:00")


def test_admin_adds_2027_and_the_due_follows(client, auth, seeded):
    resident, admin = auth("resident_a1"), auth("street_admin")
    before = client.get("/api/v1/calendar/due", query_string=DUE_2027, headers=resident).get_json()
    assert before["due_at"] == "2027-01-01T10:00:00+08:00"
    assert before["assumed_years"] == [2027]
    assert "2027年的放假安排尚未公布" in before["note"]

    client.put("/api/v1/calendar/days/2027-01-01", json={"kind": "holiday", "name": "元旦"}, headers=admin)
    moved = client.get("/api/v1/calendar/due", query_string=DUE_2027, headers=resident).get_json()
    assert moved["due_at"] == "2027-01-04T10:00:00+08:00"
    assert moved["assumed_years"] == [2027]  # still a guess until the year is marked official

    client.put("/api/v1/calendar/years/2027", json={"official": True}, headers=admin)
    known = client.get("/api/v1/calendar/due", query_string=DUE_2027, headers=resident).get_json()
    assert known["due_at"] == "2027-01-04T10:00:00+08:00"
    assert (known["assumed_years"], known["note"]) == ([], None)

    client.delete("/api/v1/calendar/days/2027-01-01", headers=admin)
    back = client.get("/api/v1/calendar/due", query_string=DUE_2027, headers=resident).get_json()
    assert back["due_at"] == "2027-01-01T10:00:00+08:00"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"amount": 1, "unit": "fortnights"}, "unit"),
        ({"amount": 1}, "unit"),
        ({"unit": "hours"}, "amount"),
        ({"amount": -1, "unit": "hours"}, "amount"),
        ({"amount": "abc", "unit": "hours"}, "amount"),
        ({"amount": "NaN", "unit": "hours"}, "amount"),
        ({"amount": "Infinity", "unit": "hours"}, "amount"),
        ({"amount": "1.5", "unit": "working_days"}, "amount"),
        ({"amount": 501, "unit": "working_days"}, "amount"),
        ({"amount": 1, "unit": "hours", "start": "yesterday"}, "start"),
        ({"amount": 1, "unit": "hours", "start": "9999-12-31T23:00:00+08:00"}, "start"),
        ({"amount": 1, "unit": "hours", "start": "2026-09-30T10:00:00 08:00"}, "start"),  # "+" unescaped
    ],
)
def test_bad_due_queries_are_422_naming_the_field(client, auth, query, field):
    response = client.get("/api/v1/calendar/due", query_string=query, headers=auth("resident_a1"))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["details"]


def test_compute_due_with_pauses(seeded):
    start = local(2026, 9, 21, 10)
    assert (
        service.compute_due(
            start=start, amount=1, unit="working_days", pauses=[(local(2026, 9, 21, 11), None)]
        )
        is None
    )
    due = service.compute_due(
        start=start, amount=1, unit="working_days", pauses=[(local(2026, 9, 21, 11), local(2026, 9, 21, 14))]
    )
    assert due.at == local(2026, 9, 22, 11, 30)


# The cache


def test_calendar_is_cached_until_it_changes(world, seeded):
    first = service.load_calendar()
    assert service.load_calendar() is first
    service.set_day(actor=world.users["street_admin"], day=date(2027, 1, 1), kind="holiday")
    second = service.load_calendar()
    assert second is not first
    assert not second.is_working_day(date(2027, 1, 1))
    assert service.load_calendar() is second
    service.mark_year(actor=world.users["street_admin"], year=2027, official=True)
    assert service.load_calendar().is_known_year(2027)
    service.delete_day(actor=world.users["street_admin"], day=date(2027, 1, 1))
    assert service.load_calendar().is_working_day(date(2027, 1, 1))


def test_a_change_by_another_process_is_seen(app, seeded):
    cached = service.load_calendar()
    assert not cached.is_working_day(date(2026, 10, 1))
    # Another process: its own connection and transaction, nothing shared with this one but the database.
    engine = sa.create_engine(db.engine.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(CalendarDay).where(CalendarDay.date == date(2026, 10, 1)))
            conn.execute(
                sa.update(CalendarRevision)
                .where(CalendarRevision.id == service.REVISION_ID)
                .values(number=CalendarRevision.number + 1, token=secrets.token_hex(16))
            )
    finally:
        engine.dispose()
    db.session.commit()  # end this session's snapshot, as a new request would
    assert service.load_calendar().is_working_day(date(2026, 10, 1))


def test_emptied_tables_are_never_served_from_an_older_cache(world, seeded):
    service.load_calendar()
    # As after a restore or a test's cleanup: rows changed and the revision row is gone.
    db.session.execute(sa.delete(CalendarRevision))
    db.session.execute(sa.delete(CalendarDay))
    db.session.commit()
    assert service.load_calendar().is_working_day(date(2026, 10, 1))
    service.set_day(actor=world.users["street_admin"], day=date(2026, 10, 2), kind="holiday")
    assert db.session.get(CalendarRevision, service.REVISION_ID).number == 1
    reloaded = service.load_calendar()
    assert not reloaded.is_working_day(date(2026, 10, 2))
    assert reloaded.is_working_day(date(2026, 10, 1))


def test_a_rolled_back_change_does_not_stick_in_the_cache(world, seeded):
    service.load_calendar()
    db.session.add(CalendarDay(date=date(2026, 10, 12), kind="holiday"))
    service._bump(None)
    assert not service.load_calendar().is_working_day(date(2026, 10, 12))  # this transaction sees it
    db.session.rollback()
    assert service.load_calendar().is_working_day(date(2026, 10, 12))


# Service hours

SUMMER_HOURS = [{"start": "14:00", "end": "18:00"}, {"start": "08:30", "end": "12:00"}]
# A Monday: one working hour from 08:45 ends at 10:00 with the office opening at 09:00, at 09:45 from 08:30.
ONE_HOUR_EARLY = {"start": "2026-12-07T08:45:00+08:00", "amount": "1", "unit": "working_hours"}


def test_street_admin_sets_the_service_hours_and_limits_count_them(client, auth, world, seeded):
    def read() -> dict:
        response = client.get("/api/v1/calendar/hours", headers=auth("resident_a1"))
        assert response.status_code == 200
        return response.get_json()

    def due():
        return client.get("/api/v1/calendar/due", query_string=ONE_HOUR_EARLY, headers=auth("resident_a1"))

    assert read() == {
        "periods": [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}],
        "day_hours": 7.0,
    }
    assert due().get_json()["due_at"] == "2026-12-07T10:00:00+08:00"
    put = client.put("/api/v1/calendar/hours", json={"periods": SUMMER_HOURS}, headers=auth("street_admin"))
    assert put.status_code == 200, put.get_json()
    summer = {"periods": sorted(SUMMER_HOURS, key=lambda p: p["start"]), "day_hours": 7.5}
    assert put.get_json() == summer and read() == summer
    assert due().get_json()["due_at"] == "2026-12-07T09:45:00+08:00"
    # A working day is now 7.5 hours: one from Monday 10:00 ends Tuesday 10:00 all the same.
    day = {**ONE_HOUR_EARLY, "start": "2026-12-07T10:00:00+08:00", "unit": "working_days"}
    response = client.get("/api/v1/calendar/due", query_string=day, headers=auth("resident_a1"))
    assert response.get_json()["due_at"] == "2026-12-08T10:00:00+08:00"
    # Recorded as a calendar change, by whom: every process reloads the calendar.
    revision = db.session.get(CalendarRevision, service.REVISION_ID)
    assert revision.updated_by_id == world.users["street_admin"].id


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ([], "服务时段应为 1 至 4 段"),
        ([{"start": f"{h:02d}:00", "end": f"{h:02d}:30"} for h in range(8, 13)], "服务时段应为 1 至 4 段"),
        ([{"start": "12:00", "end": "09:00"}], "12:00–09:00：结束时间须晚于开始时间"),
        ([{"start": "09:00", "end": "12:00"}, {"start": "11:30", "end": "17:00"}], "服务时段不能重叠"),
        # A day of minutes would stretch a limit of thousands of working hours over centuries.
        ([{"start": "09:00", "end": "09:01"}], "服务时段每天合计至少 1 小时"),
        (
            [{"start": "09:00", "end": "09:25"}, {"start": "14:00", "end": "14:30"}],
            "服务时段每天合计至少 1 小时",
        ),
    ],
)
def test_bad_service_hours_are_422_and_change_nothing(client, auth, periods, message):
    response = client.put("/api/v1/calendar/hours", json={"periods": periods}, headers=auth("street_admin"))
    assert response.status_code == 422
    assert response.get_json()["details"] == {"periods": [message]}
    assert db.session.scalars(sa.select(ServicePeriod)).all() == []


@pytest.mark.parametrize(
    "body",
    [{}, {"periods": [{"start": "9点", "end": "12:00"}]}, {"periods": [{"start": "09:00"}]}],
)
def test_malformed_service_hours_are_422_by_field(client, auth, body):
    response = client.put("/api/v1/calendar/hours", json=body, headers=auth("street_admin"))
    assert response.status_code == 422
    assert "periods" in response.get_json()["details"]


def test_the_api_is_documented(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/v1/calendar/days", "/api/v1/calendar/days/{day}", "/api/v1/calendar/years/{year}"} <= set(
        paths
    )
    assert "/api/v1/calendar/due" in paths
    assert "/api/v1/calendar/hours" in paths


def test_two_admins_setting_service_hours_at_once_leave_one_of_their_settings(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer in at a time; the race is PostgreSQL's")
    service.set_service_hours(actor=None, periods=[(time(9), time(12)), (time(13, 30), time(17, 30))])
    engine = sa.create_engine(db.engine.url)
    other = engine.connect()
    try:
        # Another admin's request, halfway: the old periods replaced by theirs, the change not committed.
        transaction = other.begin()
        other.execute(sa.delete(ServicePeriod))
        other.execute(sa.insert(ServicePeriod).values(start=time(8, 30), end=time(11, 30)))
        other.execute(
            sa.update(CalendarRevision)
            .where(CalendarRevision.id == service.REVISION_ID)
            .values(number=CalendarRevision.number + 1, token=secrets.token_hex(16))
        )
        failure = run_queued_behind(
            app,
            transaction,
            lambda: service.set_service_hours(actor=None, periods=[(time(9), time(12))]),
            what="this admin waiting for the other",
        )
    finally:
        other.close()
        engine.dispose()
    assert failure is None
    # The later change wins whole; a mix of both would overlap and break every due-time computation.
    periods = db.session.execute(sa.select(ServicePeriod.start, ServicePeriod.end)).all()
    assert [tuple(p) for p in periods] == [(time(9), time(12))]
    assert service.load_calendar().hours == ((time(9), time(12)),)
