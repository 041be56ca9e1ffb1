"""Keyset pagination: ``limit`` and an opaque ``cursor`` in, ``{items, next_cursor}`` out."""

import base64
import binascii

import marshmallow as ma

from backend.db import db
from backend.errors import ValidationFailed

MAX_LIMIT = 100


class PageArgs(ma.Schema):
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_LIMIT))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A ``{items, next_cursor}`` schema for a list of ``item_schema``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(allow_none=True, required=True),
        },
        name=name,
    )


# Keys are INTEGER ids: a cursor naming one past that range would fail in the database (500), not here.
_KEY_BOUND = 2**31


def _decode(cursor: str) -> int:
    try:
        key = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        if not -_KEY_BOUND <= key < _KEY_BOUND:
            raise ValueError("key out of range")
        return key
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("分页游标无效", details={"cursor": ["无效的游标"]}) from exc


def _encode(key: int) -> str:
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


def paginate(query, key_column, *, limit: int, cursor: str | None, descending: bool = False) -> dict:
    """Page a select() over a unique integer key (newest first when ``descending``)."""
    if cursor:
        after = _decode(cursor)
        query = query.where(key_column < after if descending else key_column > after)
    query = query.order_by(key_column.desc() if descending else key_column.asc()).limit(limit + 1)
    rows = list(db.session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode(getattr(rows[-1], key_column.key)) if more and rows else None
    return {"items": rows, "next_cursor": next_cursor}
