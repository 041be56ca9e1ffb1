import marshmallow as ma

from backend.auth.service import user_public_id
from backend.fields import LocalDateTime, Text
from backend.privacy.kinds import CONSENT_LABELS
from backend.privacy.service import field_label, reader_label


class ConsentSchema(ma.Schema):
    kind = ma.fields.String(dump_only=True)
    label = ma.fields.Function(lambda c: CONSENT_LABELS.get(c.kind, c.kind), dump_only=True)
    text_version = ma.fields.String(dump_only=True)
    granted_at = LocalDateTime(dump_only=True)
    withdrawn_at = LocalDateTime(dump_only=True, allow_none=True)


class ConsentGrantSchema(ma.Schema):
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(sorted(CONSENT_LABELS)))
    text_version = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=32),
        metadata={"description": "所同意的告知书版本"},
    )


class ConsentListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ConsentSchema), required=True)


class RevealSchema(ma.Schema):
    field = ma.fields.String(required=True, validate=ma.validate.OneOf(["phone", "id_number"]))
    reason = Text(
        required=True,
        validate=ma.validate.Length(min=2, max=200),
        metadata={"description": "查看原因（记入日志）"},
    )


class RevealedSchema(ma.Schema):
    field = ma.fields.String(required=True)
    value = ma.fields.String(required=True, allow_none=True)


class AccessLogSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    actor_id = ma.fields.Function(lambda r: user_public_id(r.actor_id), dump_only=True)
    actor_role = ma.fields.String(dump_only=True)
    actor_role_label = ma.fields.Function(lambda r: reader_label(r.actor_role), dump_only=True)
    subject_user_id = ma.fields.Function(lambda r: user_public_id(r.subject_user_id), dump_only=True)
    field = ma.fields.String(dump_only=True)
    field_label = ma.fields.Function(lambda r: field_label(r.field), dump_only=True)
    resource = ma.fields.String(dump_only=True)
    reason = ma.fields.String(dump_only=True)
    accessed_at = LocalDateTime(dump_only=True)


class AccessLogQuerySchema(ma.Schema):
    user_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=24))
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
