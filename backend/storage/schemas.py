import marshmallow as ma
from flask_smorest.fields import Upload as UploadField

from backend.fields import LocalDateTime, PublicId


class UploadFormSchema(ma.Schema):
    file = UploadField(required=True, metadata={"description": "JPG、PNG 或 WebP 图片，不超过 5 MB"})


class UploadSchema(ma.Schema):
    id = PublicId()
    content_type = ma.fields.String(dump_only=True)
    size = ma.fields.Integer(dump_only=True)
    created_at = LocalDateTime(dump_only=True)
