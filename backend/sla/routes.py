import re
from datetime import date

from flask import g

from backend import clock
from backend.auth import access
from backend.auth.roles import Role
from backend.community.service import overseen_community_ids
from backend.errors import ValidationFailed
from backend.extensions import Blueprint
from backend.fields import MAX_YEAR, MIN_YEAR, YEAR_MESSAGE
from backend.sla import clocks, policies, service
from backend.sla.calendar import Unit
from backend.sla.schemas import (
    CalendarDayListSchema,
    CalendarDaySchema,
    CalendarDayWriteSchema,
    CalendarQuerySchema,
    CalendarYearSchema,
    CalendarYearWriteSchema,
    DueQuerySchema,
    DueSchema,
    OverdueCountListSchema,
    OverdueQuerySchema,
    PolicyListSchema,
    PolicySchema,
    ServiceHoursSchema,
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
    return service.set_day(actor=g.user, day=_parse_day(day), kind=args["kind"], name=args["name"])


@blp.delete("/calendar/days/<string:day>")
@access.roles(Role.STREET_ADMIN)
@blp.response(204)
def delete_day(day):
    """删除某天的安排，恢复按周末休息、工作日上班（街道管理员）。"""
    service.delete_day(actor=g.user, day=_parse_day(day))


@blp.put("/calendar/years/<int:year>")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(CalendarYearWriteSchema)
@blp.response(200, CalendarYearSchema)
def mark_year(args, year):
    """标记某年的安排是否已按国务院通知录入（街道管理员）。"""
    return service.mark_year(
        actor=g.user, year=_check_year(year), official=args["official"], note=args["note"]
    )


def _hours(calendar) -> dict:
    return {
        "periods": [{"start": start, "end": end} for start, end in calendar.hours],
        "day_hours": calendar.day_length.total_seconds() / 3600,
    }


@blp.get("/calendar/hours")
@access.signed_in
@blp.response(200, ServiceHoursSchema)
def service_hours():
    """每个工作日的服务时段；按工作日、工作小时计算的时限只计这些时段。"""
    return _hours(service.load_calendar())


@blp.put("/calendar/hours")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(ServiceHoursSchema)
@blp.response(200, ServiceHoursSchema)
def set_service_hours(args):
    """设置每个工作日的服务时段（街道管理员）；此后开始计时的时限按新时段计算。"""
    periods = [(period["start"], period["end"]) for period in args["periods"]]
    return _hours(service.set_service_hours(actor=g.user, periods=periods))


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


# Policies and overdue counts: a blueprint of their own, beside the calendar's.
sla_blp = Blueprint("sla", __name__, description="办理时限（SLA）与超时统计")


@sla_blp.get("/sla/policies")
@access.signed_in
@sla_blp.response(200, PolicyListSchema)
def list_policies():
    """各服务类型及分类的签收、办结、延期与退单时限（默认值或街道设定）。"""
    return {"items": policies.list_policies()}


@sla_blp.put("/sla/policies/<string:service_kind>")
@access.roles(Role.STREET_ADMIN)
@sla_blp.arguments(PolicySchema)
@sla_blp.response(200, PolicySchema)
def set_kind_policy(args, service_kind):
    """设定某服务类型的时限（街道管理员）。新的时限只用于此后开始计时的事项。"""
    return policies.set_policy(actor_id=g.user.id, service_kind=service_kind, category_code=None, limits=args)


@sla_blp.delete("/sla/policies/<string:service_kind>")
@access.roles(Role.STREET_ADMIN)
@sla_blp.response(204)
def reset_kind_policy(service_kind):
    """恢复某服务类型的默认时限（街道管理员）。"""
    policies.reset_policy(service_kind=service_kind, category_code=None)


@sla_blp.put("/sla/policies/<string:service_kind>/categories/<string:category_code>")
@access.roles(Role.STREET_ADMIN)
@sla_blp.arguments(PolicySchema)
@sla_blp.response(200, PolicySchema)
def set_category_policy(args, service_kind, category_code):
    """设定某服务分类的时限，优先于其服务类型的时限（街道管理员）。

    分类须在服务目录中（停用的也可）；服务类型可与分类本身的不同（书记受理时可改工单的服务类型）。
    """
    _check_code(category_code)
    return policies.set_policy(
        actor_id=g.user.id, service_kind=service_kind, category_code=category_code, limits=args
    )


@sla_blp.delete("/sla/policies/<string:service_kind>/categories/<string:category_code>")
@access.roles(Role.STREET_ADMIN)
@sla_blp.response(204)
def reset_category_policy(service_kind, category_code):
    """取消某服务分类的单独时限，改用其服务类型的时限（街道管理员）。"""
    _check_code(category_code)
    policies.reset_policy(service_kind=service_kind, category_code=category_code)


_CATEGORY_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _check_code(code: str) -> None:
    if not _CATEGORY_CODE.fullmatch(code):
        raise ValidationFailed(details={"category_code": ["分类代码应为小写字母开头的字母、数字或下划线"]})


@sla_blp.get("/sla/overdue")
@access.roles(Role.SECRETARY, Role.STREET_ADMIN)
@sla_blp.arguments(OverdueQuerySchema, location="query")
@sla_blp.response(200, OverdueCountListSchema)
def overdue_counts(args):
    """按社区或社会组织统计超时：当前仍超时的数量，及期间内发生超时的数量（书记只看本社区）。"""
    return {
        "group_by": args["group_by"],
        "items": clocks.overdue_counts(
            group_by=args["group_by"],
            community_ids=overseen_community_ids(g.user),
            subject_type=args["subject_type"],
            since=args["since"],
            until=args["until"],
        ),
    }
