import re
from datetime import datetime

import marshmallow as ma

from backend.auth.service import user_public_id
from backend.clock import to_local
from backend.errands.definitions import SENSITIVE_FIELDS
from backend.errands.models import NO_DEADLINE, OUTCOME_LABELS, OUTCOMES, RATING_LABELS
from backend.errands.states import ACTION_LABELS, STATE_LABELS, STATES
from backend.fields import (
    LocalDateTime,
    Masked,
    PeriodQuery,
    PublicId,
    Text,
    valid_id_number,
    within_years,
)
from backend.storage.schemas import PhotoSchema

PUBLIC_ID = ma.validate.Length(min=1, max=24)
FEN = ma.validate.Range(min=0, max=100_000_000)
# An insurance card's PIN (or any password) is never taken, whatever the field is called.
PIN_KEY = re.compile(r"(^|_)(pin|pwd|password|passcode|passwd)(_|$)|密码", re.IGNORECASE)
PIN_MESSAGE = "代办员不收取医保卡密码或任何密码，请勿填写"


def _pin_keys(value, path: str = "") -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            if PIN_KEY.search(str(key)):
                found.append(where)
            found += _pin_keys(inner, where)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += _pin_keys(inner, f"{path}.{i}" if path else str(i))
    return found


class ErrandBodySchema(ma.Schema):
    """Every errand body: a PIN or password field anywhere is refused by name, before anything else."""

    @ma.pre_load
    def _refuse_pins(self, data, **kwargs):
        if found := _pin_keys(data):
            raise ma.ValidationError({key: [PIN_MESSAGE] for key in found})
        return data


# Types


class ErrandLimitSchema(ma.Schema):
    amount = ma.fields.Raw(dump_only=True)
    unit = ma.fields.String(dump_only=True)


class ErrandTypeSchema(ma.Schema):
    id = PublicId()
    code = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    enabled = ma.fields.Boolean(dump_only=True)
    current_version = ma.fields.Integer(dump_only=True)
    definition = ma.fields.Function(lambda t: t.view["definition"], dump_only=True)
    versions = ma.fields.Function(lambda t: t.view.get("versions"), dump_only=True)


class ErrandTypeListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ErrandTypeSchema), required=True)


class ErrandTypeCreateSchema(ma.Schema):
    code = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=2, max=64), ma.validate.Regexp(r"^[a-z][a-z0-9_]*$")]
    )
    definition = ma.fields.Dict(required=True, metadata={"description": "见 backend/errands/definitions.py"})


class ErrandTypeVersionSchema(ma.Schema):
    definition = ma.fields.Dict(required=True)


class ErrandTypePatchSchema(ma.Schema):
    enabled = ma.fields.Boolean(required=True)


# Errands


class ErrandItemSchema(ma.Schema):
    drug_name = Text(required=True, validate=ma.validate.Length(min=1, max=64))
    quantity = Text(required=True, validate=ma.validate.Length(min=1, max=32))
    prescription_required = ma.fields.Boolean(load_default=False)
    prescription_present = ma.fields.Boolean(load_default=False, metadata={"description": "已有处方"})


class ErrandItemMaskedSchema(ma.Schema):
    """One line of a purchase's drug list as every response shows it: the drug's name masked (it tells an
    illness), the rest whole, as the secretary checks the prescriptions and the cash rules need them."""

    drug_name = Masked(
        "health", metadata={"description": "药品名称（健康信息，已脱敏；完整清单仅代办员经 reveal 查看）"}
    )
    quantity = ma.fields.String(dump_only=True)
    prescription_required = ma.fields.Boolean(dump_only=True)
    prescription_present = ma.fields.Boolean(dump_only=True, metadata={"description": "已有处方"})


class DrugList(ma.fields.List):
    """A purchase's drug list, masked line by line; none on record (never given, or erased with a withdrawn
    consent) shows as an empty list, so the field keeps its shape."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(value or [], attr, obj, **kwargs)


SENSITIVE_INPUT = ma.validate.Length(min=1, max=200)


class ErrandSensitiveValuesSchema(ma.Schema):
    """Sensitive personal information an errand type may need; consent (单独同意 + 授权委托) first."""

    id_number = ma.fields.String(load_default=None, validate=valid_id_number)
    disability = ma.fields.String(load_default=None, validate=SENSITIVE_INPUT)
    diagnosis = ma.fields.String(load_default=None, validate=SENSITIVE_INPUT)
    subsistence_status = ma.fields.String(load_default=None, validate=SENSITIVE_INPUT)
    insurance_card = ma.fields.String(load_default=None, validate=ma.validate.Length(min=4, max=32))


class ErrandCreateSchema(ErrandBodySchema):
    type = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    applicant_name = Text(load_default=None, validate=ma.validate.Length(min=1, max=64))
    description = Text(load_default="", validate=ma.validate.Length(max=1000))
    resident_id = ma.fields.String(
        load_default=None, validate=PUBLIC_ID, metadata={"description": "书记代居民预约时填写居民的 id"}
    )
    appointment_id = ma.fields.String(
        load_default=None, validate=PUBLIC_ID, metadata={"description": "由网上预约转来时，预约的 id"}
    )
    items = ma.fields.List(
        ma.fields.Nested(ErrandItemSchema), load_default=list, validate=ma.validate.Length(max=30)
    )
    sensitive = ma.fields.Nested(ErrandSensitiveValuesSchema, load_default=dict)


class ErrandNoteSchema(ErrandBodySchema):
    note = Text(load_default="", validate=ma.validate.Length(max=500))


class ErrandCallOffSchema(ErrandBodySchema):
    """Failing or cancelling: why, and the cash handed back when the agent holds a purchase's cash."""

    reason = Text(required=True, validate=ma.validate.Length(min=2, max=500))
    change_returned_fen = ma.fields.Integer(
        load_default=None,
        strict=True,
        validate=FEN,
        metadata={"description": "代购已收现金、尚未登记结果时必填：退还居民的现金（分），须等于收到的现金"},
    )


class ErrandCancelSchema(ErrandCallOffSchema):
    at_resident_request = ma.fields.Boolean(
        load_default=False, metadata={"description": "社区代为取消时：是否应居民要求"}
    )


class ErrandAcceptSchema(ErrandBodySchema):
    agent_id = ma.fields.String(required=True, validate=PUBLIC_ID)
    eligibility_note = Text(required=True, validate=ma.validate.Length(min=2, max=500))
    materials = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=64)),
        load_default=list,
        metadata={"description": "受理时已查验的材料编码"},
    )


class ErrandAssignSchema(ErrandNoteSchema):
    agent_id = ma.fields.String(required=True, validate=PUBLIC_ID)
    cash_handed_over = ma.fields.Boolean(
        load_default=None,
        truthy={True},
        falsy={False},
        metadata={
            "description": "代购时原代办员持有居民现金（收件后）：须为 true，确认现金已当面交给新的代办员；"
            "未持有现金时不填"
        },
    )


class ErrandRecordInfoSchema(ErrandBodySchema, ErrandSensitiveValuesSchema):
    pass


class ErrandRequestMaterialsSchema(ErrandNoteSchema):
    missing = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=64)),
        required=True,
        validate=ma.validate.Length(min=1),
    )


class ErrandHandoverSchema(ma.Schema):
    number = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=32))
    handed_over_by = Text(required=True, validate=ma.validate.Length(min=1, max=64))
    received_by = Text(required=True, validate=ma.validate.Length(min=1, max=64))
    signed = ma.fields.Boolean(
        required=True,
        validate=ma.validate.Equal(True, error="交接单须双方签字"),
        metadata={"description": "双方已签字"},
    )
    note = Text(load_default="", validate=ma.validate.Length(max=500))


class ErrandCollectSchema(ErrandBodySchema):
    materials = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=64)), load_default=list)
    handover = ma.fields.Nested(ErrandHandoverSchema, required=True)
    items = ma.fields.List(
        ma.fields.Nested(ErrandItemSchema), load_default=None, validate=ma.validate.Length(max=30)
    )
    cash_received_fen = ma.fields.Integer(load_default=None, strict=True, validate=FEN)


class ErrandLodgeSchema(ErrandBodySchema):
    office = Text(required=True, validate=ma.validate.Length(min=2, max=200))
    receipt_number = Text(required=True, validate=ma.validate.Length(min=1, max=64))


class ErrandResultSchema(ErrandBodySchema):
    outcome = ma.fields.String(required=True, validate=ma.validate.OneOf(OUTCOMES))
    note = Text(required=True, validate=ma.validate.Length(min=2, max=500))
    amount_fen = ma.fields.Integer(load_default=None, strict=True, validate=FEN)
    certificate_number = ma.fields.String(load_default=None, validate=ma.validate.Length(min=4, max=32))
    valid_until = ma.fields.Date(load_default=None)
    amount_spent_fen = ma.fields.Integer(load_default=None, strict=True, validate=FEN)
    change_returned_fen = ma.fields.Integer(load_default=None, strict=True, validate=FEN)
    receipt_photo_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)


class ErrandRateSchema(ErrandBodySchema):
    level = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1, max=5))
    comment = Text(load_default="", validate=ma.validate.Length(max=500))


class ErrandRevealSchema(ErrandBodySchema):
    field = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(sorted(SENSITIVE_FIELDS)),
        metadata={"description": "要查看的敏感信息；items 为代购的完整药品清单"},
    )
    reason = Text(
        required=True,
        validate=ma.validate.Length(min=2, max=200),
        metadata={"description": "查看原因（记入日志）"},
    )


class ErrandRevealedSchema(ma.Schema):
    field = ma.fields.String(required=True)
    value = ma.fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "完整值（没有保存时为 null）：文字；items 为完整的药品清单",
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": "#/components/schemas/ErrandItem"}},
            ],
        },
    )


class ErrandEventSchema(ma.Schema):
    at = LocalDateTime(dump_only=True)
    action = ma.fields.String(dump_only=True)
    action_label = ma.fields.String(dump_only=True)
    text = ma.fields.String(
        attribute="sentence", dump_only=True, metadata={"description": "给居民看的一句话"}
    )
    actor_role = ma.fields.String(dump_only=True)
    by_system = ma.fields.Function(lambda e: e.actor_id is None, dump_only=True)
    actor_id = ma.fields.Function(
        lambda e: user_public_id(e.actor_id) if e.actor_id else None, dump_only=True
    )
    from_state = ma.fields.String(dump_only=True, allow_none=True)
    to_state = ma.fields.String(dump_only=True)
    to_state_label = ma.fields.Function(lambda e: STATE_LABELS[e.to_state], dump_only=True)
    note = ma.fields.String(dump_only=True)


class ErrandSummarySchema(ma.Schema):
    """What lists show: enough to pick an errand, nothing sensitive."""

    id = PublicId()
    number = ma.fields.String(dump_only=True)
    type = ma.fields.Function(lambda e: e.type.code, dump_only=True)
    type_name = ma.fields.Function(lambda e: e.title, dump_only=True)
    type_version = ma.fields.Function(lambda e: e.type_version.version, dump_only=True)
    state = ma.fields.String(dump_only=True)
    state_label = ma.fields.String(dump_only=True)
    due_at = ma.fields.Method("_due_at", dump_only=True, allow_none=True)
    # From then on the deadline is near (黄牌预警): lists colour it yellow.
    warn_at = LocalDateTime(dump_only=True, allow_none=True)
    is_overdue = ma.fields.Boolean(dump_only=True)
    agent_assigned = ma.fields.Function(lambda e: e.agent_id is not None, dump_only=True)
    created_at = LocalDateTime(dump_only=True)

    def _due_at(self, errand):
        return None if errand.due_at >= NO_DEADLINE else to_local(errand.due_at).isoformat()


def _handover(slip: dict | None) -> dict | None:
    """The hand-over slip, its signing time in Beijing time (kept as an ISO time in UTC)."""
    if not slip or not slip.get("at"):
        return slip
    return {**slip, "at": to_local(datetime.fromisoformat(slip["at"])).isoformat()}


class ErrandSchema(ErrandSummarySchema):
    """One errand as its viewer may see it (``errand.view``, filled by errands.views.with_view)."""

    applicant_name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    resident_id = ma.fields.Function(lambda e: user_public_id(e.resident_id), dump_only=True)
    community_id = ma.fields.Function(lambda e: e.view["community"].public_id, dump_only=True)
    community_name = ma.fields.Function(lambda e: e.view["community"].name, dump_only=True)
    appointment_id = ma.fields.String(dump_only=True, allow_none=True)
    agent = ma.fields.Function(lambda e: e.view["agent"], dump_only=True)
    office = ma.fields.String(dump_only=True)
    receipt_number = ma.fields.String(dump_only=True)
    eligibility_note = ma.fields.String(dump_only=True)
    materials = ma.fields.Function(lambda e: e.view["materials"], dump_only=True)
    steps = ma.fields.Function(lambda e: e.view["steps"], dump_only=True)
    handover = ma.fields.Function(lambda e: _handover(e.handover), dump_only=True, allow_none=True)
    # Sensitive too (health): the drug names masked, whatever the viewer; see DrugList.
    items = DrugList(
        ma.fields.Nested(ErrandItemMaskedSchema),
        dump_only=True,
        metadata={
            "description": "代购药品清单：药名已脱敏，数量和处方情况完整；完整清单仅该代办的代办员"
            "在办理期间经 POST /errands/{id}/reveal（field=items，须说明原因，记入日志）查看"
        },
    )
    cash_received_fen = ma.fields.Integer(dump_only=True, allow_none=True)
    amount_spent_fen = ma.fields.Integer(dump_only=True, allow_none=True)
    change_returned_fen = ma.fields.Integer(dump_only=True, allow_none=True)
    receipts = ma.fields.List(ma.fields.Nested(PhotoSchema), attribute="view.receipts", dump_only=True)
    outcome = ma.fields.String(dump_only=True, allow_none=True)
    outcome_label = ma.fields.Function(lambda e: OUTCOME_LABELS.get(e.outcome), dump_only=True)
    result_note = ma.fields.String(dump_only=True)
    amount_fen = ma.fields.Integer(dump_only=True, allow_none=True)
    valid_until = ma.fields.String(dump_only=True, allow_none=True)
    # Sensitive: always masked here; the assigned agent reads a full value through /reveal (logged).
    id_number = Masked("id_number")
    disability = Masked("disability")
    diagnosis = Masked("health")
    subsistence_status = Masked("subsistence")
    insurance_card = Masked("insurance_card")
    certificate_number = Masked("id_number")
    sensitive_fields = ma.fields.Function(lambda e: e.view["sensitive_fields"], dump_only=True)
    close_reason = ma.fields.String(dump_only=True)
    cancelled_by_resident = ma.fields.Boolean(dump_only=True)
    rating = ma.fields.Integer(dump_only=True, allow_none=True)
    rating_label = ma.fields.Function(lambda e: RATING_LABELS.get(e.rating), dump_only=True)
    rating_comment = ma.fields.String(dump_only=True)
    allowed_actions = ma.fields.Function(lambda e: e.view["allowed_actions"], dump_only=True)
    allowed_action_labels = ma.fields.Function(
        lambda e: [ACTION_LABELS[a] for a in e.view["allowed_actions"]], dump_only=True
    )
    timeline = ma.fields.Function(
        lambda e: ErrandEventSchema(many=True).dump(e.view["timeline"]), dump_only=True
    )
    accepted_at = LocalDateTime(dump_only=True, allow_none=True)
    delivered_at = LocalDateTime(dump_only=True, allow_none=True)
    completed_at = LocalDateTime(dump_only=True, allow_none=True)


class ErrandListQuerySchema(ma.Schema):
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=120))
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATES))


class ErrandBoardQuerySchema(ErrandListQuerySchema):
    community_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    type = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    overdue = ma.fields.Boolean(load_default=None)
    unassigned = ma.fields.Boolean(load_default=None)
    number = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(r"^[Dd][Bb][0-9]{14,18}\Z", error="代办编号为 DB 加 14 至 18 位数字"),
        metadata={"description": "按代办编号查找（居民来电报的编号）：任何状态都找"},
    )


class ErrandPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ErrandSummarySchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class ErrandNoticeQuerySchema(ma.Schema):
    type = ma.fields.String(load_default="subsistence_allowance", validate=ma.validate.Length(max=64))
    community_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(["json", "csv"]))


class ErrandNoticeRowSchema(ma.Schema):
    name = Text(required=True)
    amount_fen = ma.fields.Integer(required=True)


class ErrandNoticeSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ErrandNoticeRowSchema), required=True)


# Metrics


class ErrandMetricsQuerySchema(PeriodQuery):
    group_by = ma.fields.String(
        load_default="type", validate=ma.validate.OneOf(["type", "community", "month"])
    )
    community_id = ma.fields.String(load_default=None, validate=PUBLIC_ID)
    type = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    since = ma.fields.Date(
        load_default=None, validate=within_years, metadata={"description": "受理日期起（含）"}
    )
    until = ma.fields.Date(
        load_default=None, validate=within_years, metadata={"description": "受理日期止（不含）"}
    )


class ErrandMetricsRowSchema(ma.Schema):
    key = ma.fields.String(required=True)
    label = Text(required=True)
    accepted = ma.fields.Integer(required=True)
    cancelled_by_resident = ma.fields.Integer(required=True)
    completed = ma.fields.Integer(required=True)
    refused = ma.fields.Integer(required=True)
    failed = ma.fields.Integer(required=True)
    completion_rate = ma.fields.Float(
        allow_none=True, required=True, metadata={"description": "代办完成率 = 办结 ÷ (受理 − 居民取消)"}
    )
    on_time = ma.fields.Integer(required=True)
    on_time_rate = ma.fields.Float(
        allow_none=True, required=True, metadata={"description": "按时率 = 各步骤均未超时的办结数 ÷ 办结数"}
    )


class ErrandMetricsSchema(ma.Schema):
    group_by = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(ErrandMetricsRowSchema), required=True)
    total = ma.fields.Nested(ErrandMetricsRowSchema, required=True)


class ErrandStepDurationSchema(ma.Schema):
    type = ma.fields.String(required=True)
    step = ma.fields.String(required=True)
    step_label = Text(required=True)
    count = ma.fields.Integer(required=True)
    average_hours = ma.fields.Float(required=True)
    overdue = ma.fields.Integer(required=True)


class ErrandStepDurationListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ErrandStepDurationSchema), required=True)
