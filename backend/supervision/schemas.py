import marshmallow as ma

from backend.fields import LocalDateTime, PublicId, Text
from backend.supervision.models import REASONS, STATUSES


class SupervisionSchema(ma.Schema):
    id = PublicId()
    subject_type = ma.fields.String(dump_only=True)
    reason = ma.fields.String(dump_only=True)
    reason_label = ma.fields.String(dump_only=True)
    title = ma.fields.String(dump_only=True)
    note = ma.fields.String(dump_only=True)
    status = ma.fields.String(dump_only=True)
    status_label = ma.fields.String(dump_only=True)
    raised_at = LocalDateTime(dump_only=True)
    raised_by_system = ma.fields.Function(lambda r: r.raised_by_id is None, dump_only=True)
    closed_at = LocalDateTime(dump_only=True, allow_none=True)
    resolution = ma.fields.String(dump_only=True)


class SupervisionQuerySchema(ma.Schema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
    reason = Text(load_default=None, validate=ma.validate.OneOf(REASONS))


class SupervisionCloseSchema(ma.Schema):
    resolution = Text(
        required=True, validate=ma.validate.Length(min=2, max=1000), metadata={"description": "督办结果"}
    )
