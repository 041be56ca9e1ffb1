import re
from datetime import date

from flask import g
from flask_smorest import Blueprint

from backend import clock
from backend.auth import access
from backend.auth.roles import Role
from backend.errors import ValidationFailed
from backend.sla import service
from backend.sla.calendar import Unit
from backend.sla.schemas import (
    MAX_YEAR,
    MIN_YEAR,
    YEAR_MESSAGE,
    CalendarDayListSchema,
    CalendarDaySchema,
    CalendarDayWriteSchema,
    CalendarQuerySchema,
    CalendarYearSchema,
    CalendarYearWriteSchema,
    DueQuerySchema,
    DueSchema,
)

blp = Blueprint("calendar", __name__, description="工作日历与办理时限")

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_day(text: str) -> date:
    # Parsed here rather than by a URL converter, so a bad date is a 422 naming the field, not a bare 404.
    try:
        day = date.fromisoformat(text) if _ISO_DAY.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        raise ValidationFailed(details={"date": ["日期格式应为 YYYY-MM-DD，且须是真实存在的日期"]})
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValidationFailed(details={"date": [YEAR_MESSAGE]})
    return day


def _check_year(year: int) -> int:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationFailed(details={"year": [YEAR_MESSAGE]})
    return year


@blp.get("/calendar/days")
@access.signed_in
@blp.arguments(CalendarQuerySchema, location="query")
@blp.response(200, CalendarDayListSchema)
def list_days(args):
    """某年的放假与调休上班安排；known 为否时，该年按周末休息推算。"""
    year = args["year"] or clock.to_local(clock.now()).year
    record = service.get_year(year)
    return {
        "year": year,
        "known": bool(record and record.official),
        "note": record.note if record else None,
        "items": service.list_days(year=year),
    }


@blp.put("/calendar/days/<string:day>")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(CalendarDayWriteSchema)
@blp.response(200, CalendarDaySchema)
def set_day(args, day):
    """设置某天为放假或调休上班（街道管理员）。"""
    return service.set_day(actor=g.principal, day=_parse_day(day), kind=args["kind"], name=args["name"])


@blp.delete("/calendar/days/<string:day>")
@access.roles(Role.STREET_ADMIN)
@blp.response(204)
def delete_day(day):
    """删除某天的安排，恢复按周末休息、工作日上班（街道管理员）。"""
    service.delete_day(actor=g.principal, day=_parse_day(day))


@blp.put("/calendar/years/<int:year>")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(CalendarYearWriteSchema)
@blp.response(200, CalendarYearSchema)
def mark_year(args, year):
    """标记某年的安排是否已按国务院通知录入（街道管理员）。"""
    return service.mark_year(
        actor=g.principal, year=_check_year(year), official=args["official"], note=args["note"]
    )


@blp.get("/calendar/due")
@access.signed_in
@blp.arguments(DueQuerySchema, location="query")
@blp.response(200, DueSchema)
def compute_due(args):
    """计算办理时限的到期时间；涉及未公布放假安排的年份时，note 会说明。"""
    start = args["start"] or clock.now()
    unit = Unit(args["unit"])
    amount = int(args["amount"]) if unit is Unit.WORKING_DAYS else args["amount"]
    due = service.compute_due(start=start, amount=amount, unit=unit)
    return {
        "start": start,
        "amount": args["amount"],
        "unit": unit.value,
        "due_at": due.at,
        "assumed_years": sorted(due.assumed_years),
        "note": due.note,
    }
