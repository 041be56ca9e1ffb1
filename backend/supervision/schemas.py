import marshmallow as ma

from backend.fields import LocalDateTime, PublicId, Text
from backend.sla import subjects
from backend.supervision.models import REASONS, STATUSES


def _subject(record) -> dict:
    """What the record is about, to open it by: its kind, number, title, public id and mini-program page."""
    kind = subjects.get(record.subject_type)
    # A page of records comes described together (service.records_page); a single one is described here.
    about = getattr(record, "subject_description", None) or kind.describe(record.subject_id)
    return {
        "type": record.subject_type,
        "type_label": kind.label,
        "id": about.public_id,
        "number": about.number,
        "title": about.title,
        "page": about.page,
    }


class SupervisionSchema(ma.Schema):
    id = PublicId()
    subject_type = ma.fields.String(dump_only=True)
    subject = ma.fields.Function(
        _subject,
        dump_only=True,
        metadata={"description": "督办的工单或代办：type、type_label、id、number、title、page（小程序页面）"},
    )
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


class SupervisionRaiseSchema(ma.Schema):
    reason = Text(
        required=True,
        validate=ma.validate.Length(min=2, max=500),
        metadata={"description": "督办事由：记在督办记录上并告知承办方和社区，不写入时间线（居民看不到）"},
    )
