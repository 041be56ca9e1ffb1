"""The shipped 2026 notice as a pure WorkCalendar, and local-time helpers, for the calendar tests."""

import csv
from datetime import UTC, date, datetime
from pathlib import Path

from backend.clock import LOCAL_TZ
from backend.sla.calendar import WorkCalendar

SEED_CSV = Path(__file__).resolve().parents[2] / "backend" / "seed" / "cn-holidays-2026.csv"


def official_2026_rows() -> list[tuple[date, str, str]]:
    with SEED_CSV.open(encoding="utf-8") as f:
        return [(date.fromisoformat(r["date"]), r["kind"], r["name"]) for r in csv.DictReader(f)]


def calendar_2026(**kwargs) -> WorkCalendar:
    rows = official_2026_rows()
    return WorkCalendar(
        holidays=[d for d, kind, _ in rows if kind == "holiday"],
        workdays=[d for d, kind, _ in rows if kind == "workday"],
        known_years=[2026],
        **kwargs,
    )


def local(*args) -> datetime:
    """An aware Beijing-time datetime: local(2026, 9, 30, 10) is 2026-09-30 10:00 +08:00."""
    return datetime(*args, tzinfo=LOCAL_TZ)


def as_local(value: datetime) -> datetime:
    assert value.tzinfo is UTC, "results are returned in UTC"
    return value.astimezone(LOCAL_TZ)
