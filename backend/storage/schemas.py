import marshmallow as ma
from flask_smorest.fields import Upload as UploadField

from backend.fields import LocalDateTime, PublicId


class UploadFormSchema(ma.Schema):
    file = UploadField(required=True, metadata={"description": "JPG、PNG 或 WebP 图片，不超过 5 MB"})


class PhotoQuerySchema(ma.Schema):
    size = ma.fields.String(
        load_default="full",
        validate=ma.validate.OneOf(["full", "small"], error="size 只能是 full 或 small"),
        metadata={"description": "small：最长边 480 像素的小图，供列表和缩略图用，省流量"},
    )


def small_url(url: str) -> str:
    """Where a photo's small rendition is (PhotoQuerySchema's size): for lists and thumbnails."""
    return url + "?size=small"


class PhotoSchema(ma.Schema):
    """A photo as documents name it (built as dicts by the views): its id, where to download it, and its
    small rendition."""

    id = ma.fields.String(dump_only=True)
    content_type = ma.fields.String(dump_only=True)
    url = ma.fields.String(dump_only=True)
    small_url = ma.fields.String(dump_only=True, metadata={"description": "最长边 480 像素的小图"})


class UploadSchema(ma.Schema):
    id = PublicId()
    content_type = ma.fields.String(dump_only=True)
    size = ma.fields.Integer(dump_only=True)
    created_at = LocalDateTime(dump_only=True)
