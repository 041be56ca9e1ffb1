import marshmallow as ma

from backend.fields import LocalDateTime, PublicId
from backend.notify import events
from backend.notify.models import STATUSES
from backend.pagination import PageArgs

SUBSCRIBE_ANSWERS = ("accept", "reject", "ban", "filter")


class InboxQuerySchema(PageArgs):
    unread = ma.fields.Boolean(load_default=False, metadata={"description": "只看未读"})


class HistorySchema(ma.Schema):
    at = LocalDateTime(dump_only=True)
    outcome = ma.fields.String(
        dump_only=True,
        metadata={
            "description": "queued | inbox_only | sent | no_grant | refused | retry | failed | disabled"
        },
    )
    outcome_label = ma.fields.String(dump_only=True)
    errcode = ma.fields.Integer(dump_only=True, allow_none=True, metadata={"description": "微信错误码"})


class NotificationSchema(ma.Schema):
    id = PublicId()
    event = ma.fields.String(dump_only=True)
    title = ma.fields.String(dump_only=True)
    body = ma.fields.String(dump_only=True)
    page = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "点击跳转的小程序页面"})
    status = ma.fields.String(dump_only=True, metadata={"description": " | ".join(STATUSES)})
    status_label = ma.fields.String(dump_only=True)
    created_at = LocalDateTime(dump_only=True)
    read_at = LocalDateTime(dump_only=True, allow_none=True)
    history = ma.fields.List(ma.fields.Nested(HistorySchema), dump_only=True)


class InboxPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(NotificationSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
    unread_count = ma.fields.Integer(required=True)


class ReadAllSchema(ma.Schema):
    updated = ma.fields.Integer(required=True, metadata={"description": "本次标为已读的条数"})
    unread_count = ma.fields.Integer(required=True)


class TemplateSchema(ma.Schema):
    event = ma.fields.String(dump_only=True)
    title = ma.fields.Function(lambda row: events.EVENTS[row.event].title, dump_only=True)
    template_id = ma.fields.String(dump_only=True)
    fields = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        dump_only=True,
        metadata={"description": "微信模板关键词 → 语义字段"},
    )
    enabled = ma.fields.Boolean(dump_only=True)
    edited = ma.fields.Function(
        lambda row: row.updated_by_id is not None,
        dump_only=True,
        metadata={"description": "是否由管理员改过（否则为系统默认）"},
    )
    updated_at = LocalDateTime(dump_only=True)


class TemplateListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TemplateSchema), required=True)


class TemplateWriteSchema(ma.Schema):
    template_id = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=64, error="模板 ID 须为 1 至 64 个字符"),
        metadata={"description": "微信公众平台订阅消息里的模板 ID"},
    )
    fields = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={"description": "关键词 → 语义字段（subject、number、state、at、note、place）"},
    )
    enabled = ma.fields.Boolean(load_default=True)

    @ma.validates("fields")
    def _mapping(self, value, **kwargs):
        if not value:
            raise ma.ValidationError("至少需要一个关键词")
        if len(value) > 20:
            raise ma.ValidationError("关键词最多 20 个")
        errors = events.mapping_errors(value)
        if errors:
            raise ma.ValidationError(errors)


class SubscribeSchema(ma.Schema):
    results = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=64)),
        values=ma.fields.String(
            validate=ma.validate.OneOf(SUBSCRIBE_ANSWERS, error="只能是 accept、reject、ban 或 filter")
        ),
        required=True,
        validate=ma.validate.Length(max=20, error="一次最多 20 个模板"),
        metadata={
            "description": "wx.requestSubscribeMessage 的结果：模板 ID → accept | reject | ban | filter"
        },
    )

    @ma.pre_load
    def _drop_err_msg(self, data, **kwargs):
        # The mini-program may pass wx.requestSubscribeMessage's whole result, which carries errMsg.
        results = data.get("results") if isinstance(data, dict) else None
        if isinstance(results, dict) and "errMsg" in results:
            data = {**data, "results": {k: v for k, v in results.items() if k != "errMsg"}}
        return data


class GrantSchema(ma.Schema):
    event = ma.fields.String(dump_only=True)
    title = ma.fields.String(dump_only=True)
    template_id = ma.fields.String(dump_only=True)
    enabled = ma.fields.Boolean(dump_only=True)
    remaining = ma.fields.Integer(dump_only=True, metadata={"description": "剩余可发送的一次性订阅次数"})


class GrantListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GrantSchema), required=True)
