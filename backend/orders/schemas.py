import marshmallow as ma

from backend.auth.service import user_public_id
from backend.clock import LOCAL_TZ, to_local
from backend.fields import LocalDateTime, PeriodQuery, PublicId, Text, within_years
from backend.orders.models import NO_DEADLINE, extension_asked, shown_event_data
from backend.orders.states import ACTION_LABELS, STATE_LABELS, STATES
from backend.privacy.masking import mask_phone
from backend.sla.calendar import Unit
from backend.sla.rules import SERVICE_KINDS
from backend.storage.schemas import PhotoSchema

# \Z, not $: $ also matches before a final newline, which would be stored with the number.
PHONE = ma.validate.Regexp(r"^1[3-9][0-9]{9}\Z", error="请输入 11 位手机号")
PUBLIC_ID = ma.validate.Length(min=1, max=24)


def _text(value, low: int, high: int) -> bool:
    return type(value) is str and low <= len(value) <= high


def _typed(value, low: int, high: int) -> bool:
    """Text a person typed, as ``load`` would keep it: no spaces around it (load drops them)."""
    return _text(value, low, high) and not value[0].isspace() and not value[-1].isspace()


def _public_id(value) -> bool:
    return value is None or _text(value, 1, 24)


def _coordinate(value, limit: int) -> bool:
    # Only numbers as they come from JSON; marshmallow decides about strings, booleans and the rest.
    return value is None or (type(value) in (int, float) and -limit <= value <= limit)


class OrderCreateSchema(ma.Schema):
    category = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    description = Text(required=True, validate=ma.validate.Length(min=2, max=1000))
    answers = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(max=64)), load_default=dict)
    address = Text(required=True, validate=ma.validate.Length(min=2, max=200))
    grid_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    resident_id = ma.fields.String(
        load_default=None,
        validate=PUBLIC_ID,
        metadata={"description": "代录时填写居民的 id；居民本人点单不填"},
    )
    latitude = ma.fields.Float(load_default=None, validate=ma.validate.Range(min=-90, max=90))
    longitude = ma.fields.Float(load_default=None, validate=ma.validate.Range(min=-180, max=180))
    preferred_start = ma.fields.AwareDateTime(
        load_default=None, default_timezone=LOCAL_TZ, validate=within_years
    )
    preferred_end = ma.fields.AwareDateTime(
        load_default=None, default_timezone=LOCAL_TZ, validate=within_years
    )
    contact_name = Text(required=True, validate=ma.validate.Length(min=1, max=64))
    contact_phone = ma.fields.String(required=True, validate=PHONE)
    photo_ids = ma.fields.List(ma.fields.String(validate=PUBLIC_ID), load_default=list)

    def fast_load(self, body: dict) -> dict | None:
        """What ``load`` makes of a plainly valid body, or None to let ``load`` decide (and explain): the
        placement is the API's busiest request (see backend.extensions.ArgumentsParser)."""
        get = body.get
        answers, photos = get("answers", {}), get("photo_ids", [])
        latitude, longitude = get("latitude"), get("longitude")
        if not (
            body.keys() <= self.fields.keys()
            and _text(get("category"), 1, 64)
            and _typed(get("description"), 2, 1000)
            and _typed(get("address"), 2, 200)
            and _typed(get("contact_name"), 1, 64)
            and type(phone := get("contact_phone")) is str
            and PHONE.regex.match(phone) is not None
            and _public_id(get("grid_id"))
            and _public_id(get("resident_id"))
            and _coordinate(latitude, 90)
            and _coordinate(longitude, 180)
            and get("preferred_start") is None
            and get("preferred_end") is None
            and type(answers) is dict
            and all(type(k) is str and len(k) <= 64 for k in answers)
            and type(photos) is list
            and all(_text(p, 1, 24) for p in photos)
        ):
            return None
        return {
            "category": body["category"],
            "description": body["description"],
            "answers": dict(answers),
            "address": body["address"],
            "grid_id": get("grid_id"),
            "resident_id": get("resident_id"),
            "latitude": None if latitude is None else float(latitude),
            "longitude": None if longitude is None else float(longitude),
            "preferred_start": None,
            "preferred_end": None,
            "contact_name": body["contact_name"],
            "contact_phone": phone,
            "photo_ids": list(photos),
        }


class ReasonSchema(ma.Schema):
    reason = Text(required=True, validate=ma.validate.Length(min=2, max=500))


class NoteSchema(ma.Schema):
    note = Text(load_default="", validate=ma.validate.Length(max=500))


class AcceptSchema(NoteSchema):
    service_kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(SERVICE_KINDS))


class DispatchSchema(NoteSchema):
    organization_ids = ma.fields.List(
        ma.fields.String(validate=PUBLIC_ID), required=True, validate=ma.validate.Length(min=1, max=50)
    )
    pool = ma.fields.Boolean(load_default=False, metadata={"description": "抢单池：多个组织中先接单者得"})


class TakeSchema(ma.Schema):
    organization_id = ma.fields.String(
        load_default=None, validate=PUBLIC_ID, metadata={"description": "管理多个组织时，以哪个组织接单"}
    )


class AssignSchema(ma.Schema):
    volunteer_ids = ma.fields.List(
        ma.fields.String(validate=PUBLIC_ID), required=True, validate=ma.validate.Length(min=1, max=20)
    )


class ExtensionRequestSchema(ReasonSchema):
    amount = ma.fields.Float(required=True, validate=ma.validate.Range(min=0, min_inclusive=False))
    unit = ma.fields.String(required=True, validate=ma.validate.OneOf([u.value for u in Unit]))


class ResolveSchema(ma.Schema):
    note = Text(required=True, validate=ma.validate.Length(min=2, max=1000))
    proof_ids = ma.fields.List(ma.fields.String(validate=PUBLIC_ID), load_default=list)


class RateSchema(ma.Schema):
    level = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=5),
        metadata={"description": "5 很满意 · 4 满意 · 3 较满意 · 2 基本满意 · 1 不满意"},
    )
    tags = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=20)),
        load_default=list,
        validate=ma.validate.Length(max=10),
    )
    comment = Text(load_default="", validate=ma.validate.Length(max=500))


class PendingExtensionSchema(ma.Schema):
    """An organization's extension request, waiting on the secretary (orders.views._pending_extension)."""

    amount = ma.fields.String(dump_only=True, metadata={"description": "申请延期的时长，十进制数字串，如 3"})
    unit = ma.fields.String(dump_only=True, validate=ma.validate.OneOf([u.value for u in Unit]))
    label = ma.fields.Function(
        lambda request: extension_asked(request).label(),
        dump_only=True,
        metadata={"type": "string", "description": "延期时长，给人看的，如 3个工作日、2小时"},
    )
    reason = ma.fields.String(dump_only=True)
    requested_at = ma.fields.String(dump_only=True, metadata={"description": "申请时间，ISO 8601，+08:00"})


class EventSchema(ma.Schema):
    at = LocalDateTime(dump_only=True)
    action = ma.fields.String(dump_only=True)
    action_label = ma.fields.String(dump_only=True)
    actor_role = ma.fields.String(dump_only=True)
    by_system = ma.fields.Function(lambda e: e.actor_id is None, dump_only=True)
    actor_id = ma.fields.Function(
        lambda e: user_public_id(e.actor_id) if e.actor_id else None, dump_only=True
    )
    from_state = ma.fields.String(dump_only=True, allow_none=True)
    to_state = ma.fields.String(dump_only=True)
    to_state_label = ma.fields.Function(lambda e: STATE_LABELS[e.to_state], dump_only=True)
    note = ma.fields.String(dump_only=True)
    data = ma.fields.Function(lambda e: shown_event_data(e.data), dump_only=True, metadata={"type": "object"})


class RatingSchema(ma.Schema):
    level = ma.fields.Integer(dump_only=True)
    level_label = ma.fields.String(dump_only=True)
    tags = ma.fields.List(ma.fields.String(), dump_only=True)
    comment = ma.fields.String(dump_only=True)
    created_at = LocalDateTime(dump_only=True)


class OrderSummarySchema(ma.Schema):
    """What lists show: enough to pick an order, nothing personal."""

    id = PublicId()
    number = ma.fields.String(dump_only=True)
    category = ma.fields.Function(lambda o: o.category.code, dump_only=True)
    category_name = ma.fields.Function(lambda o: o.category.name, dump_only=True)
    service_kind = ma.fields.String(dump_only=True)
    service_kind_label = ma.fields.String(dump_only=True)
    state = ma.fields.String(dump_only=True)
    state_label = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    due_at = ma.fields.Method("_due_at", dump_only=True, allow_none=True)
    # From then on the deadline is near (黄牌预警): lists colour it yellow.
    warn_at = LocalDateTime(dump_only=True, allow_none=True)
    is_overdue = ma.fields.Boolean(dump_only=True)
    is_supervised = ma.fields.Boolean(dump_only=True)
    possible_duplicate = ma.fields.Function(lambda o: o.possible_duplicate_of_id is not None, dump_only=True)
    extension_requested = ma.fields.Function(lambda o: o.extension_request is not None, dump_only=True)
    pool = ma.fields.Boolean(dump_only=True)
    created_at = LocalDateTime(dump_only=True)

    def _due_at(self, order):
        return None if order.due_at >= NO_DEADLINE else to_local(order.due_at).isoformat()


class OrderSchema(OrderSummarySchema):
    """One order as a given viewer may see it (``order.view``, filled by orders.views.with_view)."""

    answers = ma.fields.Dict(dump_only=True)
    address = ma.fields.Method("_address", dump_only=True)
    contact_name = ma.fields.Method("_contact_name", dump_only=True)
    contact_phone = ma.fields.Method("_contact_phone", dump_only=True)
    contact_masked = ma.fields.Function(lambda o: not o.view["contact_visible"], dump_only=True)
    entered_on_behalf = ma.fields.Function(lambda o: o.entered_by_role is not None, dump_only=True)
    grid_id = ma.fields.Function(lambda o: o.view["grid"].public_id, dump_only=True)
    grid_name = ma.fields.Function(lambda o: o.view["grid"].name, dump_only=True)
    community_id = ma.fields.Function(lambda o: o.view["community"].public_id, dump_only=True)
    community_name = ma.fields.Function(lambda o: o.view["community"].name, dump_only=True)
    latitude = ma.fields.Method("_latitude", dump_only=True)
    longitude = ma.fields.Method("_longitude", dump_only=True)
    preferred_start = LocalDateTime(dump_only=True, allow_none=True)
    preferred_end = LocalDateTime(dump_only=True, allow_none=True)
    organization = ma.fields.Function(lambda o: o.view["organization"], dump_only=True)
    offered_to = ma.fields.Function(lambda o: o.view["offered_to"], dump_only=True)
    volunteers = ma.fields.Function(lambda o: o.view["volunteers"], dump_only=True)
    photos = ma.fields.List(ma.fields.Nested(PhotoSchema), attribute="view.photos", dump_only=True)
    proof = ma.fields.List(ma.fields.Nested(PhotoSchema), attribute="view.proof", dump_only=True)
    resolution_note = ma.fields.String(dump_only=True)
    extension_request = ma.fields.Nested(PendingExtensionSchema, dump_only=True, allow_none=True)
    extension_granted = ma.fields.Boolean(dump_only=True)
    return_count = ma.fields.Integer(dump_only=True)
    reopen_count = ma.fields.Integer(dump_only=True)
    rating = ma.fields.Function(lambda o: o.view["rating"], dump_only=True)
    allowed_actions = ma.fields.Function(lambda o: o.view["allowed_actions"], dump_only=True)
    allowed_action_labels = ma.fields.Function(
        lambda o: [ACTION_LABELS[a] for a in o.view["allowed_actions"]], dump_only=True
    )
    timeline = ma.fields.Function(lambda o: EventSchema(many=True).dump(o.view["timeline"]), dump_only=True)
    accepted_at = LocalDateTime(dump_only=True, allow_none=True)
    dispatched_at = LocalDateTime(dump_only=True, allow_none=True)
    taken_at = LocalDateTime(dump_only=True, allow_none=True)
    resolved_at = LocalDateTime(dump_only=True, allow_none=True)
    closed_at = LocalDateTime(dump_only=True, allow_none=True)

    def _address(self, order):
        if order.view["contact_visible"]:
            return order.address
        return f"{order.view['community'].name}{order.view['grid'].name}（接单后可见详细地址）"

    def _contact_name(self, order):
        name = order.contact_name
        return name if order.view["contact_visible"] else name[:1] + "*" * max(1, len(name) - 1)

    def _contact_phone(self, order):
        return order.contact_phone if order.view["contact_visible"] else mask_phone(order.contact_phone)

    def _latitude(self, order):
        return order.latitude if order.view["contact_visible"] else None

    def _longitude(self, order):
        return order.longitude if order.view["contact_visible"] else None


class OrderListQuerySchema(ma.Schema):
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=120))
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATES))

    def fast_load(self, args) -> dict | None:
        """A list asked for with no query, or with a cursor alone (the next page), is every default (and the
        cursor); anything else is load's to decide (see backend.extensions.ArgumentsParser)."""
        if args and (args.keys() != {"cursor"} or len(cursor := args.getlist("cursor")) != 1):
            return None
        defaults = ((name, field.load_default) for name, field in self.load_fields.items())
        loaded = {name: default() if callable(default) else default for name, default in defaults}
        if args:
            if len(cursor[0]) > 120:
                return None
            loaded["cursor"] = cursor[0]
        return loaded


class BoardQuerySchema(OrderListQuerySchema):
    community_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    service_kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(SERVICE_KINDS))
    category = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    grid_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    overdue = ma.fields.Boolean(load_default=None)
    supervised = ma.fields.Boolean(load_default=None)
    needs_action = ma.fields.Boolean(
        load_default=True, metadata={"description": "只看待受理、待派单、已退单、待签收或待批延期的工单"}
    )
    number = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(r"^[0-9]{16,18}\Z", error="工单号为 16 至 18 位数字"),
        metadata={"description": "按工单号查找（居民来电报的号码）：任何状态都找，不受 needs_action 限制"},
    )


class OrderPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(OrderSummarySchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class BoardPageSchema(OrderPageSchema):
    counts = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={
            "description": "各状态的工单数：所选社区的全部工单，不随其他筛选条件变化（状态页签上的数字）"
        },
    )


class CandidateSchema(ma.Schema):
    organization_id = ma.fields.Function(lambda c: c.organization.public_id, dump_only=True)
    name = ma.fields.Function(lambda c: c.organization.name, dump_only=True)
    score = ma.fields.Float(dump_only=True)
    open_load = ma.fields.Integer(dump_only=True)
    capacity = ma.fields.Integer(dump_only=True)
    rating = ma.fields.Float(dump_only=True, allow_none=True)
    on_time_rate = ma.fields.Float(dump_only=True, allow_none=True)
    grid_orders = ma.fields.Integer(dump_only=True)
    reasons = ma.fields.List(ma.fields.String(), dump_only=True)


class CandidateListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CandidateSchema), required=True)


class RatingStatsQuerySchema(PeriodQuery):
    group_by = ma.fields.String(
        load_default="organization", validate=ma.validate.OneOf(["organization", "community"])
    )
    since = ma.fields.AwareDateTime(load_default=None, default_timezone=LOCAL_TZ, validate=within_years)
    until = ma.fields.AwareDateTime(load_default=None, default_timezone=LOCAL_TZ, validate=within_years)


class RatingStatsSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    orders = ma.fields.Integer(dump_only=True)
    rated = ma.fields.Integer(dump_only=True)
    satisfaction_rate = ma.fields.Float(dump_only=True, allow_none=True, metadata={"description": "满意率"})
    response_rate = ma.fields.Float(dump_only=True, allow_none=True, metadata={"description": "响应率"})
    resolution_rate = ma.fields.Float(dump_only=True, allow_none=True, metadata={"description": "解决率"})
    levels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), dump_only=True)


class RatingStatsListSchema(ma.Schema):
    group_by = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(RatingStatsSchema), required=True)
