import marshmallow as ma

from backend.appointments.models import BOOKING_STATES, WEEKDAY_LABELS
from backend.auth.roles import ROLE_LABELS
from backend.auth.service import user_public_id
from backend.community.models import Community
from backend.db import db
from backend.errands.names import type_names
from backend.fields import LocalDateTime, PublicId, Text, within_years
from backend.pagination import PageArgs

PUBLIC_ID = ma.validate.Length(min=1, max=24)
ERRAND_TYPE = ma.validate.Regexp(r"^[a-z][a-z0-9_]{1,63}$", error="事项代码为小写字母、数字和下划线")
HHMM = "%H:%M"
TIME_ERRORS = {"invalid": "请用 HH:MM 格式，如 09:30"}
ACTION_LABELS = {"move": "改约", "cancel": "取消预约"}


# Service points and slots


class ServicePointCreateSchema(ma.Schema):
    name = Text(required=True, validate=ma.validate.Length(min=2, max=64))
    address = Text(required=True, validate=ma.validate.Length(min=2, max=200))
    description = Text(load_default="", validate=ma.validate.Length(max=1000))
    community_id = ma.fields.String(
        load_default=None, validate=PUBLIC_ID, metadata={"description": "所属社区；不填为街道服务点"}
    )
    street_id = ma.fields.String(
        load_default=None,
        validate=PUBLIC_ID,
        metadata={"description": "街道服务点所属街道（管理多个街道时填）"},
    )
    errand_types = ma.fields.List(
        ma.fields.String(validate=ERRAND_TYPE),
        required=True,
        validate=ma.validate.Length(min=1, max=30),
        metadata={"description": "办理的代办事项代码，如 subsistence_allowance"},
    )
    booking_days_ahead = ma.fields.Integer(
        load_default=14,
        validate=ma.validate.Range(min=1, max=90),
        metadata={"description": "可提前预约的天数"},
    )


class ServicePointUpdateSchema(ma.Schema):
    name = Text(validate=ma.validate.Length(min=2, max=64))
    address = Text(validate=ma.validate.Length(min=2, max=200))
    description = Text(validate=ma.validate.Length(max=1000))
    errand_types = ma.fields.List(
        ma.fields.String(validate=ERRAND_TYPE), validate=ma.validate.Length(min=1, max=30)
    )
    booking_days_ahead = ma.fields.Integer(validate=ma.validate.Range(min=1, max=90))
    active = ma.fields.Boolean()


class SlotCreateSchema(ma.Schema):
    weekday = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=7, error="星期为 1（周一）至 7（周日）"),
        metadata={"description": "1 周一 … 7 周日"},
    )
    start = ma.fields.Time(required=True, format=HHMM, error_messages=TIME_ERRORS)
    end = ma.fields.Time(required=True, format=HHMM, error_messages=TIME_ERRORS)
    capacity = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1, max=1000))

    @ma.validates_schema
    def _ends_after_start(self, data, **kwargs):
        if data["end"] <= data["start"]:
            raise ma.ValidationError("须晚于开始时间", field_name="end")


class SlotUpdateSchema(ma.Schema):
    capacity = ma.fields.Integer(validate=ma.validate.Range(min=1, max=1000))
    active = ma.fields.Boolean(metadata={"description": "false 停止开放（已有预约保留）"})


class SlotSchema(ma.Schema):
    id = PublicId()
    weekday = ma.fields.Integer(dump_only=True)
    weekday_label = ma.fields.String(dump_only=True)
    start = ma.fields.Time(attribute="start_time", format=HHMM, dump_only=True)
    end = ma.fields.Time(attribute="end_time", format=HHMM, dump_only=True)
    capacity = ma.fields.Integer(dump_only=True)
    active = ma.fields.Boolean(dump_only=True)


def _errand_types(codes: list[str]) -> list[dict]:
    names = type_names()
    return [{"code": c, "label": names.get(c, c)} for c in codes]


def _community(point) -> dict | None:
    if point.community_id is None:
        return None
    community = db.session.get(Community, point.community_id)
    return {"id": community.public_id, "name": community.name}


class ServicePointSummarySchema(ma.Schema):
    id = PublicId()
    name = ma.fields.String(dump_only=True)
    address = ma.fields.String(dump_only=True)
    community = ma.fields.Function(_community, dump_only=True, metadata={"description": "街道服务点为 null"})
    level_label = ma.fields.Function(
        lambda p: "社区服务点" if p.community_id else "街道服务点", dump_only=True
    )
    errand_types = ma.fields.Function(lambda p: _errand_types(p.errand_types), dump_only=True)
    active = ma.fields.Boolean(dump_only=True)


class ServicePointSchema(ServicePointSummarySchema):
    description = ma.fields.String(dump_only=True)
    booking_days_ahead = ma.fields.Integer(dump_only=True)
    slots = ma.fields.Method("_slots", dump_only=True)

    def _slots(self, point):
        return SlotSchema(many=True).dump([s for s in point.slots if s.active])


class ServicePointListQuerySchema(PageArgs):
    community_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    errand_type = ma.fields.String(load_default=None, validate=ERRAND_TYPE)


class ServicePointPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ServicePointSummarySchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


# Availability


class AvailabilityQuerySchema(ma.Schema):
    from_ = ma.fields.Date(data_key="from", load_default=None, metadata={"description": "默认今天"})
    to = ma.fields.Date(load_default=None, metadata={"description": "默认可预约的最后一天；一次最多 31 天"})


class OccurrenceSchema(ma.Schema):
    slot_id = ma.fields.Function(lambda o: o["slot"].public_id, dump_only=True)
    date = ma.fields.Date(dump_only=True)
    weekday = ma.fields.Function(lambda o: o["slot"].weekday, dump_only=True)
    weekday_label = ma.fields.Function(lambda o: o["slot"].weekday_label, dump_only=True)
    starts_at = LocalDateTime(dump_only=True)
    ends_at = LocalDateTime(dump_only=True)
    capacity = ma.fields.Integer(dump_only=True)
    booked = ma.fields.Integer(dump_only=True)
    remaining = ma.fields.Integer(dump_only=True)
    available = ma.fields.Function(lambda o: o["remaining"] > 0, dump_only=True)


class ClosedDaySchema(ma.Schema):
    date = ma.fields.Date(dump_only=True)
    reason = ma.fields.String(dump_only=True)


class AvailabilitySchema(ma.Schema):
    service_point_id = ma.fields.String(dump_only=True)
    items = ma.fields.List(ma.fields.Nested(OccurrenceSchema), required=True)
    closed_days = ma.fields.List(ma.fields.Nested(ClosedDaySchema), required=True)


# Bookings


class BookingCreateSchema(ma.Schema):
    slot_id = ma.fields.String(required=True, validate=PUBLIC_ID, metadata={"description": "每周时段的 id"})
    date = ma.fields.Date(required=True, metadata={"description": "预约日期 YYYY-MM-DD"})
    errand_type = ma.fields.String(required=True, validate=ERRAND_TYPE)
    note = Text(load_default="", validate=ma.validate.Length(max=500))
    resident_id = ma.fields.String(
        load_default=None, validate=PUBLIC_ID, metadata={"description": "书记代约时填写居民的 id"}
    )


class BookingMoveSchema(ma.Schema):
    slot_id = ma.fields.String(required=True, validate=PUBLIC_ID)
    date = ma.fields.Date(required=True)


class BookingCancelSchema(ma.Schema):
    reason = Text(load_default="", validate=ma.validate.Length(max=500))


class BookingListQuerySchema(PageArgs):
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf(BOOKING_STATES))
    service_point_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    date = ma.fields.Date(
        load_default=None, validate=within_years, metadata={"description": "只看这一天的预约"}
    )


def _user_ref(user_id: int | None, role: str | None = None) -> dict | None:
    if user_id is None:
        return None
    ref = {"id": user_public_id(user_id)}
    if role is not None:
        ref.update(role=role, role_label=ROLE_LABELS.get(role, role))
    return ref


class BookingSchema(ma.Schema):
    id = PublicId()
    state = ma.fields.String(dump_only=True)
    state_label = ma.fields.String(dump_only=True)
    service_point = ma.fields.Function(
        lambda b: {"id": b.point.public_id, "name": b.point.name, "address": b.point.address}, dump_only=True
    )
    slot_id = ma.fields.Function(lambda b: b.slot.public_id, dump_only=True)
    date = ma.fields.Function(lambda b: b.slot_date.isoformat(), dump_only=True)
    weekday_label = ma.fields.Function(lambda b: WEEKDAY_LABELS[b.slot_date.weekday()], dump_only=True)
    starts_at = LocalDateTime(dump_only=True)
    ends_at = LocalDateTime(dump_only=True)
    errand_type = ma.fields.String(dump_only=True)
    errand_type_label = ma.fields.String(dump_only=True)
    note = ma.fields.String(dump_only=True)
    resident_id = ma.fields.Function(lambda b: user_public_id(b.resident_id), dump_only=True)
    by_proxy = ma.fields.Boolean(dump_only=True, metadata={"description": "代约：由社区书记代为预约"})
    booked_by = ma.fields.Function(lambda b: _user_ref(b.booked_by_id, b.booked_by_role), dump_only=True)
    moved_count = ma.fields.Integer(dump_only=True)
    created_at = LocalDateTime(dump_only=True)
    cancelled_at = LocalDateTime(dump_only=True, allow_none=True)
    cancelled_by = ma.fields.Function(lambda b: _user_ref(b.cancelled_by_id), dump_only=True)
    cancel_reason = ma.fields.String(dump_only=True)
    attended_at = LocalDateTime(dump_only=True, allow_none=True)
    allowed_actions = ma.fields.Function(lambda b: getattr(b, "actions", []), dump_only=True)
    allowed_action_labels = ma.fields.Function(
        lambda b: [ACTION_LABELS[a] for a in getattr(b, "actions", [])], dump_only=True
    )


class BookingPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(BookingSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
