"""marshmallow's own messages in Chinese: a 422's field messages are read by residents and staff.

A schema's explicit message (``error=`` on a validator, ``error_messages=`` on a field) still wins; these
replace only the library's English defaults. Range bakes its messages when it is built, so this module is
imported before any schema is defined (first thing in the ``backend`` package).
"""

import marshmallow as ma
from marshmallow import fields, validate

_FIELD_MESSAGES = {
    fields.Field: {"required": "缺少必填项", "null": "不能为空", "validator_failed": "取值无效"},
    fields.Nested: {"type": "应为对象"},
    fields.List: {"invalid": "应为列表"},
    fields.Tuple: {"invalid": "应为列表"},
    fields.String: {"invalid": "应为文本", "invalid_utf8": "不是有效的 UTF-8 文本"},
    fields.Url: {"invalid": "不是有效的网址"},
    fields.Email: {"invalid": "不是有效的邮箱地址"},
    fields.UUID: {"invalid_uuid": "不是有效的 UUID"},
    fields.Number: {"invalid": "应为数字", "too_large": "数值过大"},
    fields.Integer: {"invalid": "应为整数"},
    fields.Float: {"special": "不能是 NaN 或无穷大"},
    fields.Decimal: {"special": "不能是 NaN 或无穷大"},
    fields.Boolean: {"invalid": "应为 true 或 false"},
    fields.DateTime: {
        "invalid": "时间格式应为 ISO 8601，如 2026-09-30T10:00:00+08:00",
        "invalid_awareness": "时间须带时区，如 +08:00",
    },
    fields.Date: {"invalid": "日期格式应为 YYYY-MM-DD，如 2026-09-30"},
    fields.Time: {"invalid": "时间格式应为 HH:MM，如 09:30"},
    fields.TimeDelta: {"invalid": "不是有效的时长"},
    fields.Mapping: {"invalid": "应为对象"},
    fields.Enum: {"unknown": "应为以下之一：{choices}"},
}

_VALIDATOR_MESSAGES = {
    validate.Range: {
        "message_min": "应{min_op} {{min}}",
        "message_max": "应{max_op} {{max}}",
        "message_all": "应{min_op} {{min}} 且{max_op} {{max}}",
        "message_gte": "不小于",
        "message_gt": "大于",
        "message_lte": "不大于",
        "message_lt": "小于",
    },
    validate.Length: {
        "message_min": "长度不能少于 {min}",
        "message_max": "长度不能超过 {max}",
        "message_all": "长度应在 {min} 至 {max} 之间",
        "message_equal": "长度应为 {equal}",
    },
    validate.OneOf: {"default_message": "应为以下之一：{choices}"},
    validate.ContainsOnly: {"default_message": "含有不在 {choices} 之中的选项"},
    validate.NoneOf: {"default_message": "不允许的取值"},
    validate.Equal: {"default_message": "应等于 {other}"},
    validate.Regexp: {"default_message": "格式不正确"},
    validate.Email: {"default_message": "不是有效的邮箱地址"},
    validate.URL: {"default_message": "不是有效的网址"},
}

_SCHEMA_MESSAGES = {"type": "应为对象", "unknown": "不支持的字段"}


def install() -> None:
    for field_class, messages in _FIELD_MESSAGES.items():
        own = field_class.__dict__.get("default_error_messages", {})
        field_class.default_error_messages = {**own, **messages}
    for validator_class, messages in _VALIDATOR_MESSAGES.items():
        for name, message in messages.items():
            setattr(validator_class, name, message)
    ma.Schema._default_error_messages = {**ma.Schema._default_error_messages, **_SCHEMA_MESSAGES}


install()
