"""Keyset pagination: ``limit`` and an opaque ``cursor`` in, ``{items, next_cursor}`` out."""

import base64
import binascii
import json
from datetime import UTC, datetime

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


# A cursor comes back from the client, so what it names must fit the column it is compared with (INTEGER
# ids, SMALLINT ranks, aware times UTC can hold): otherwise the database, not the request, fails (a 500).
INTEGER_BOUND, SMALLINT_BOUND = 2**31, 2**15


def bad_cursor() -> ValidationFailed:
    return ValidationFailed("分页游标无效", details={"cursor": ["无效的游标"]})


def _decode(cursor: str) -> int:
    try:
        key = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_cursor() from exc
    return cursor_int(key)


def _encode(key: int) -> str:
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


def encode_parts(values: list) -> str:
    """A cursor of several keys (a rank, a time, an id): JSON, base64 without padding."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_parts(cursor: str, size: int) -> list:
    """The ``size`` keys of an encode_parts() cursor, each still to be checked (cursor_int, cursor_time)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_cursor() from exc
    if not isinstance(values, list) or len(values) != size:
        raise bad_cursor()
    return values


def cursor_int(value, bound: int = INTEGER_BOUND) -> int:
    """A key of a cursor that an integer column of ``bound`` can hold (JSON's true is no integer)."""
    if type(value) is not int or not -bound <= value < bound:
        raise bad_cursor()
    return value


def cursor_time(value) -> datetime:
    """A time of a cursor: ISO 8601 with its offset, one UTC can hold."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise bad_cursor() from exc


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
