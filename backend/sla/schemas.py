import marshmallow as ma

from backend.clock import LOCAL_TZ
from backend.fields import MAX_YEAR, MIN_YEAR, YEAR_MESSAGE, LocalDateTime, PeriodQuery, Text, within_years
from backend.sla.calendar import Unit
from backend.sla.models import DAY_KINDS
from backend.sla.rules import SERVICE_KIND_LABELS

# Above a year's worth of any unit is a typo, not a time limit.
MAX_AMOUNT = {Unit.WORKING_DAYS: 500, Unit.WORKING_HOURS: 3500, Unit.HOURS: 12000}


class CalendarQuerySchema(ma.Schema):
    year = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=MIN_YEAR, max=MAX_YEAR, error=YEAR_MESSAGE),
        metadata={"description": "默认为今年"},
    )


class CalendarDaySchema(ma.Schema):
    date = ma.fields.Date(dump_only=True)
    kind = ma.fields.String(dump_only=True, metadata={"description": "holiday 放假 | workday 调休上班"})
    kind_label = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    updated_at = LocalDateTime(dump_only=True)


class CalendarDayListSchema(ma.Schema):
    year = ma.fields.Integer(required=True)
    known = ma.fields.Boolean(
        required=True, metadata={"description": "该年是否已按国务院通知录入；否则按周末休息推算"}
    )
    note = Text(allow_none=True)
    items = ma.fields.List(ma.fields.Nested(CalendarDaySchema), required=True)


class CalendarDayWriteSchema(ma.Schema):
    kind = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(DAY_KINDS, error="只能是 holiday（放假）或 workday（调休上班）"),
    )
    name = Text(load_default="", validate=ma.validate.Length(max=64, error="名称最多 64 个字"))


TIME_MESSAGE = "时间格式应为 HH:MM（24 小时制）"


class ServicePeriodSchema(ma.Schema):
    start = ma.fields.Time(format="%H:%M", required=True, error_messages={"invalid": TIME_MESSAGE})
    end = ma.fields.Time(format="%H:%M", required=True, error_messages={"invalid": TIME_MESSAGE})


class ServiceHoursSchema(ma.Schema):
    periods = ma.fields.List(
        ma.fields.Nested(ServicePeriodSchema),
        required=True,
        metadata={"description": "每个工作日的服务时段，北京时间，如 09:00–12:00、13:30–17:30"},
    )
    day_hours = ma.fields.Float(
        dump_only=True,
        metadata={"description": "一个工作日的服务时长（小时）：“1 个工作日”的时限即这么多小时的服务时间"},
    )


class CalendarYearWriteSchema(ma.Schema):
    official = ma.fields.Boolean(required=True, metadata={"description": "是否已按国务院通知录入"})
    note = Text(load_default="", validate=ma.validate.Length(max=200, error="备注最多 200 个字"))


class CalendarYearSchema(ma.Schema):
    year = ma.fields.Integer(dump_only=True)
    official = ma.fields.Boolean(dump_only=True)
    note = ma.fields.String(dump_only=True)
    updated_at = LocalDateTime(dump_only=True)


class DueQuerySchema(ma.Schema):
    start = ma.fields.AwareDateTime(
        load_default=None,
        default_timezone=LOCAL_TZ,
        error_messages={"invalid": "时间格式应为 ISO 8601，如 2026-09-30T10:00:00+08:00"},
        metadata={"description": "起算时间，默认为现在；不带时区按北京时间"},
    )
    # Bounds are checked below: a Range would put a Decimal into the OpenAPI document, which JSON refuses.
    amount = ma.fields.Decimal(
        required=True,
        error_messages={"invalid": "时限应为数字", "special": "时限应为数字"},
        metadata={"minimum": 0, "description": "working_days 须为整数"},
    )
    unit = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(
            [u.value for u in Unit], error="只能是 working_days、working_hours 或 hours"
        ),
    )

    @ma.validates_schema
    def _amount_fits_unit(self, data, **kwargs):
        start, amount, unit = data.get("start"), data.get("amount"), data.get("unit")
        if start is not None and not MIN_YEAR <= start.year <= MAX_YEAR:
            raise ma.ValidationError({"start": [YEAR_MESSAGE]})
        if amount is None or unit is None:
            return
        unit = Unit(unit)
        if amount < 0:
            raise ma.ValidationError({"amount": ["时限不能为负数"]})
        if unit is Unit.WORKING_DAYS and amount != amount.to_integral_value():
            raise ma.ValidationError({"amount": ["工作日数须为整数"]})
        if amount > MAX_AMOUNT[unit]:
            raise ma.ValidationError({"amount": [f"时限最多 {MAX_AMOUNT[unit]}"]})


class DueSchema(ma.Schema):
    start = LocalDateTime(dump_only=True)
    amount = ma.fields.Float(dump_only=True)
    unit = ma.fields.String(dump_only=True)
    due_at = LocalDateTime(dump_only=True)
    assumed_years = ma.fields.List(
        ma.fields.Integer(), dump_only=True, metadata={"description": "未公布放假安排、按周末推算的年份"}
    )
    note = ma.fields.String(dump_only=True, allow_none=True)


class LimitSchema(ma.Schema):
    amount = ma.fields.Float(
        required=True,
        allow_nan=False,
        validate=ma.validate.Range(min=0, min_inclusive=False, error="须大于 0"),
    )
    unit = ma.fields.Enum(Unit, by_value=True, required=True)
    label = ma.fields.Method("_label", dump_only=True)

    def _label(self, limit):
        return limit.label()

    @ma.validates_schema
    def _fits_unit(self, data, **kwargs):
        amount, unit = data.get("amount"), data.get("unit")
        if amount is None or unit is None:
            return
        if amount > MAX_AMOUNT[unit]:
            raise ma.ValidationError(f"不能超过 {MAX_AMOUNT[unit]}", "amount")
        if unit is Unit.WORKING_DAYS and not float(amount).is_integer():
            raise ma.ValidationError("工作日须为整数", "amount")
        if round(amount, 2) != amount:
            raise ma.ValidationError("最多保留两位小数", "amount")
        if unit is not Unit.WORKING_DAYS and amount * 60 < 1:  # 0.01 hours is 36 seconds: a typo, not a limit
            raise ma.ValidationError("时限不能短于 1 分钟", "amount")


class PolicySchema(ma.Schema):
    accept = ma.fields.Nested(LimitSchema, required=True, metadata={"description": "签收时限"})
    complete = ma.fields.Nested(LimitSchema, required=True, metadata={"description": "办结时限"})
    extension = ma.fields.Nested(
        LimitSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "可延期时长；空为不允许延期"},
    )
    return_within = ma.fields.Nested(
        LimitSchema,
        load_default=None,
        allow_none=True,
        data_key="return",
        metadata={"description": "派单后可退单的时限；空为不允许退单"},
    )


class PolicyEntrySchema(ma.Schema):
    service_kind = ma.fields.String(dump_only=True)
    service_kind_label = ma.fields.Function(lambda e: SERVICE_KIND_LABELS[e["service_kind"]], dump_only=True)
    category_code = ma.fields.String(dump_only=True, allow_none=True)
    source = ma.fields.String(dump_only=True, metadata={"description": "default 默认 | override 街道设定"})
    policy = ma.fields.Nested(PolicySchema, dump_only=True)
    updated_at = LocalDateTime(dump_only=True, allow_none=True)


class PolicyListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PolicyEntrySchema), required=True)


DATETIME_MESSAGE = "时间格式应为 ISO 8601，如 2026-09-30T10:00:00+08:00"


class OverdueQuerySchema(PeriodQuery):
    group_by = ma.fields.String(
        load_default="community", validate=ma.validate.OneOf(["community", "organization"])
    )
    subject_type = ma.fields.String(load_default=None, validate=ma.validate.Length(max=32))
    since = ma.fields.AwareDateTime(
        load_default=None,
        default_timezone=LOCAL_TZ,
        validate=within_years,
        error_messages={"invalid": DATETIME_MESSAGE},
    )
    until = ma.fields.AwareDateTime(
        load_default=None,
        default_timezone=LOCAL_TZ,
        validate=within_years,
        error_messages={"invalid": DATETIME_MESSAGE},
    )


class OverdueCountSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    open_overdue = ma.fields.Integer(dump_only=True, metadata={"description": "当前仍超时未办的数量"})
    overdue_in_period = ma.fields.Integer(dump_only=True, metadata={"description": "期间内发生超时的数量"})


class OverdueCountListSchema(ma.Schema):
    group_by = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(OverdueCountSchema), required=True)
