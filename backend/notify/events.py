"""What can be notified: each event's Chinese title, how its inbox text reads, and how WeChat values are cut.

Pure data and string functions: nothing here touches Flask or the database.
"""

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime

from backend import clock

# The semantic fields callers pass; templates map WeChat's keys (thing1, time4...) onto these names.
SEMANTIC_FIELDS = ("subject", "number", "state", "at", "note", "place")
FIELD_LABELS = {
    "subject": "事项",
    "number": "编号",
    "state": "状态",
    "at": "时间",
    "note": "备注",
    "place": "地点",
}


@dataclass(frozen=True)
class Event:
    name: str
    title: str
    # The inbox's first sentence; may use any semantic field, ``subject`` is always present.
    sentence: str
    # A short state word used when the caller gives none (the phrase field of most templates).
    default_state: str
    # Whether WeChat's subscribe message carries it; inbox-only events have no template.
    has_template: bool = True
    # A person subscribes to a handful of templates, so one event carries several steps (a rejection goes
    # through order_accepted's template, its state 已驳回). By that state word, each such step's own
    # inbox title and sentence, so nobody reads "已受理" about an order that was turned down.
    steps: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict, compare=False)
    # WeChat's phrase keyword takes 5 Chinese characters: a state word longer than that is sent as the
    # phrase written for it here, never cut into something else; the inbox keeps the whole word.
    phrases: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def phrase_for(self, state: str) -> str:
        """The state word as a phrase keyword shows it."""
        return self.phrases.get(state, state)

    def title_for(self, fields: dict[str, str]) -> str:
        return self.steps.get(fields.get("state", ""), (self.title,))[0]

    def body(self, fields: dict[str, str]) -> str:
        """The inbox text: the step's sentence, then every other given field on its own line."""
        values = {**fields, "state": fields.get("state") or self.default_state}
        if "at" in values:
            values["at"] = format_time(values["at"])
        sentence = self.steps.get(fields.get("state", ""), (None, self.sentence))[1]
        used = set(re.findall(r"{(\w+)}", sentence))
        lines = [sentence.format_map({k: values.get(k, "") for k in used})]
        for key in SEMANTIC_FIELDS:
            if key not in used and fields.get(key):
                lines.append(f"{FIELD_LABELS[key]}：{values[key]}")
        return "\n".join(lines)


EVENTS: dict[str, Event] = {
    e.name: e
    for e in (
        Event(
            "order_accepted",
            "工单已受理",
            "您的「{subject}」已由社区受理。",
            "已受理",
            steps={
                "已驳回": ("工单已驳回", "您的「{subject}」未被社区受理。"),
                "新工单": ("新工单待受理", "居民点了「{subject}」，请及时受理。"),
            },
        ),
        Event(
            "order_dispatched",
            "工单已派单",
            "「{subject}」已派单，等待服务组织签收。",
            "待签收",
            steps={
                "已改派": ("工单已改派", "「{subject}」已改派给其他服务组织，无需再办理。"),
                "已被接单": ("工单已由其他组织接单", "「{subject}」已由其他服务组织接单，无需再办理。"),
                "已退单": ("工单被退回", "服务组织退回了「{subject}」，请重新派单。"),
                "申请延期": ("延期申请待审批", "服务组织申请延长「{subject}」的办理时限，请审批。"),
                "重办": ("工单需重办", "居民对「{subject}」的办理结果有异议，需要重新办理。"),
                "无人承接": ("工单无人承接", "「{subject}」暂无服务组织承接，请人工派单。"),
            },
        ),
        Event(
            "order_taken",
            "工单已签收",
            "服务组织已签收「{subject}」，正在安排办理。",
            "已签收",
            steps={
                "已指派": ("新的服务任务", "您已被指派办理「{subject}」。"),
                "待补充": ("工单待补充", "办理「{subject}」需要您补充信息。"),
                "已批准": ("延期已批准", "「{subject}」的延期申请已批准。"),
                "未批准": ("延期未批准", "「{subject}」的延期申请未获批准，请按原时限办理。"),
            },
        ),
        Event(
            "order_resolved",
            "工单已回单",
            "「{subject}」已办理完成，请确认并评价。",
            "已回单",
            steps={"已取消": ("工单已取消", "「{subject}」已取消。")},
        ),
        Event("order_overdue", "工单已超时", "「{subject}」已超过办理时限，请尽快处理。", "已超时"),
        Event(
            "errand_step_changed",
            "代办进度更新",
            "您的代办「{subject}」进度：{state}。",
            "已更新",
            steps={
                # To the community's secretaries, when a resident books an errand (受理 is theirs).
                "待受理": ("新代办待受理", "居民预约了代办「{subject}」，请及时受理。"),
                # To the agent an errand is given to, and to the one it is taken from.
                "新代办": ("新的代办任务", "您有一件新的代办「{subject}」，请及时办理。"),
                "已改派": ("代办已改派", "「{subject}」已改派给其他代办员，您无需再办理。"),
                # ...the same, when the resident's cash went with it from one agent to the other.
                "接收现金": (
                    "新的代办任务",
                    "您有一件新的代办「{subject}」，原代办员代收的居民现金已交给您，请妥善保管。",
                ),
                "交出现金": (
                    "代办已改派",
                    "「{subject}」已改派给其他代办员，您无需再办理；您代收的居民现金已登记交给新的代办员。",
                ),
                # To the agent, when the resident (or the community) calls off an errand in their hands.
                "停止办理": ("代办已取消", "「{subject}」已取消，请停止办理。"),
                "退还现金": ("代办已取消", "「{subject}」已取消，请停止办理，并将代收的现金退还居民。"),
                # ...or the community ends it as one that cannot be done (办理失败).
                "终止办理": ("代办已终止", "「{subject}」已按办理失败终止，请停止办理。"),
                "终止并退还现金": (
                    "代办已终止",
                    "「{subject}」已按办理失败终止，请停止办理，并将代收的现金退还居民。",
                ),
            },
            phrases={"终止并退还现金": "终止退现金"},
        ),
        Event(
            "appointment_reminder",
            "预约提醒",
            "您预约的「{subject}」即将开始，请按时前往。",
            "待办理",
            steps={
                "已取消": ("预约已取消", "您预约的「{subject}」已被社区取消，如仍需办理请重新预约。"),
                "已改约": ("预约已改期", "社区已将您预约的「{subject}」改到以下时间，请按时前往。"),
            },
        ),
        Event("sla_warning", "黄牌预警", "「{subject}」临近办理时限，请抓紧办理。", "将到期", False),
        Event("supervision_raised", "督办提醒", "「{subject}」已列入督办，请尽快处理。", "督办", False),
    )
}
TEMPLATED_EVENTS = tuple(name for name, e in EVENTS.items() if e.has_template)


def get_event(name: str) -> Event:
    """Return the event called ``name``; ValueError for a name no one defined."""
    try:
        return EVENTS[name]
    except KeyError:
        raise ValueError(f"unknown notification event {name!r}") from None


# WeChat's subscribe-message value kinds, named by the key's prefix (thing1 → thing).
WECHAT_KEY = re.compile(
    r"^(thing|character_string|phrase|time|date|number|letter|symbol|amount|name|phone_number|car_number)"
    r"([0-9]{1,2})$"
)
# The kinds a semantic field can fill: text (thing), a code (character_string), a state word (phrase), a time
# (time, date). WeChat refuses text in the others (number: digits only, name: a person's name, amount, ...).
FILLABLE_KINDS = ("thing", "character_string", "phrase", "time", "date")
# Longest value WeChat accepts per kind (characters).
VALUE_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5}
_NOT_ASCII_PRINTABLE = re.compile(r"[^\x21-\x7e]")
# A phrase is Chinese characters only (5个以内纯汉字): no digit, letter, space, bracket or "…".
_NOT_HAN = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff]")


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 time; a value without an offset is Beijing time."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=clock.LOCAL_TZ) if parsed.tzinfo is None else parsed


def format_time(value: str) -> str:
    """``2026-05-01T09:30:00+08:00`` → ``2026年05月01日 09:30`` (Asia/Shanghai)."""
    return clock.to_local(parse_time(value)).strftime("%Y年%m月%d日 %H:%M")


def fit_value(key: str, value: str) -> str:
    """Make a value what WeChat accepts for the kind of key (thing ≤ 20, phrase ≤ 5 Chinese characters...):
    cut where it is too long, marked where the kind allows a mark."""
    match = WECHAT_KEY.match(key)
    kind = match.group(1) if match else "thing"
    if kind == "time":
        return format_time(value)
    if kind == "date":
        return clock.to_local(parse_time(value)).strftime("%Y年%m月%d日")
    if kind == "phrase":
        # Cut without a mark: "…" is no Chinese character, and WeChat would refuse the whole message.
        return _NOT_HAN.sub("", value)[: VALUE_LIMITS["phrase"]] or "无"
    if kind == "character_string":
        # ASCII only: a cut is marked with "..." rather than a character WeChat would refuse.
        value = _NOT_ASCII_PRINTABLE.sub("", value) or "-"
        limit = VALUE_LIMITS[kind]
        return value if len(value) <= limit else value[: limit - 3] + "..."
    value = " ".join(value.split()) or "无"
    limit = VALUE_LIMITS["thing"]
    return value if len(value) <= limit else value[: limit - 1] + "…"


def mapping_errors(mapping: dict) -> dict[str, list[str]]:
    """Per WeChat key, what is wrong with a template's key → semantic field mapping (empty when fine)."""
    errors: dict[str, list[str]] = {}
    for key, field in mapping.items():
        match = WECHAT_KEY.match(key) if isinstance(key, str) else None
        if match is None:
            errors[str(key)] = ["不是微信订阅消息的关键词，如 thing1、character_string2、time4"]
        elif match.group(1) not in FILLABLE_KINDS:
            kinds = "、".join(FILLABLE_KINDS)
            errors[key] = [f"该类关键词只收数字、姓名、金额等固定格式，请改用 {kinds} 类关键词"]
        elif field not in SEMANTIC_FIELDS:
            errors[key] = ["只能填 " + "、".join(SEMANTIC_FIELDS)]
        elif match.group(1) in ("time", "date") and field != "at":
            errors[key] = ["时间类关键词只能对应 at"]
    return errors
