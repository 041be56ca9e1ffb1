"""A 422's field messages reach people: marshmallow's defaults are in Chinese (backend/messages.py)."""

import re

import marshmallow as ma
import pytest

CHINESE = re.compile(r"[\u4e00-\u9fff]")


class Inner(ma.Schema):
    name = ma.fields.String(required=True)


class Everything(ma.Schema):
    text = ma.fields.String()
    count = ma.fields.Integer()
    share = ma.fields.Float()
    flag = ma.fields.Boolean()
    at = ma.fields.AwareDateTime()
    day = ma.fields.Date()
    opens = ma.fields.Time()
    tags = ma.fields.List(ma.fields.String())
    inner = ma.fields.Nested(Inner)
    mapping = ma.fields.Dict()
    ranged = ma.fields.Integer(validate=ma.validate.Range(min=1, max=5))
    at_least = ma.fields.Integer(validate=ma.validate.Range(min=1))
    sized = ma.fields.String(validate=ma.validate.Length(min=2, max=4))
    choice = ma.fields.String(validate=ma.validate.OneOf(["a", "b"]))
    pattern = ma.fields.String(validate=ma.validate.Regexp(r"^[0-9]+\Z"))
    needed = ma.fields.String(required=True)
    kept = ma.fields.String(validate=ma.validate.Length(max=1, error="自己的话"))


BAD = {
    "text": (5, "应为文本"),
    "count": ("many", "应为整数"),
    "share": ("nan", "不能是 NaN 或无穷大"),
    "flag": ("perhaps", "应为 true 或 false"),
    "at": ("tomorrow", "时间格式应为 ISO 8601，如 2026-09-30T10:00:00+08:00"),
    "day": ("2026/09/30", "日期格式应为 YYYY-MM-DD，如 2026-09-30"),
    "opens": ("9 点", "时间格式应为 HH:MM，如 09:30"),
    "tags": ("a", "应为列表"),
    "inner": ("a", {"_schema": ["应为对象"]}),
    "mapping": ("a", "应为对象"),
    "ranged": (9, "应不小于 1 且不大于 5"),
    "at_least": (0, "应不小于 1"),
    "sized": ("abcdef", "长度应在 2 至 4 之间"),
    "choice": ("c", "应为以下之一：a, b"),
    "pattern": ("12a", "格式不正确"),
    "text_null": (None, "不能为空"),
}


@pytest.mark.parametrize("field", sorted(BAD))
def test_each_default_message_is_chinese(field):
    value, message = BAD[field]
    name = field.removesuffix("_null")
    with pytest.raises(ma.ValidationError) as caught:
        Everything().load({"needed": "x", name: value})
    assert caught.value.messages[name] == (message if isinstance(message, dict) else [message])


def test_missing_unknown_and_nested_fields_are_named_in_chinese():
    with pytest.raises(ma.ValidationError) as caught:
        Everything().load({"inner": {}, "extra": 1})
    assert caught.value.messages == {
        "needed": ["缺少必填项"],
        "inner": {"name": ["缺少必填项"]},
        "extra": ["不支持的字段"],
    }


def test_a_schemas_own_message_still_wins():
    with pytest.raises(ma.ValidationError) as caught:
        Everything().load({"needed": "x", "kept": "ab"})
    assert caught.value.messages == {"kept": ["自己的话"]}


def test_the_apis_422_speaks_chinese(client):
    response = client.post("/api/v1/auth/login", json={"code": None, "nick": "x"})
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert details == {"code": ["不能为空"], "nick": ["不支持的字段"]}
    assert all(CHINESE.search(message) for messages in details.values() for message in messages)
