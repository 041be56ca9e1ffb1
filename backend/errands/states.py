"""The errand pipeline (红色代办) as a table: state × action → next state, and who may take the action.

Pure: no Flask, no database. Every errand type runs through the same states; what differs per type (its
materials, the time limit of each step, the office, what a result looks like) is data in the type's
version. Rules that need data (required materials present, money balancing, the assigned agent) are the
service's; this table only says which actions exist in which state and for whom.
"""

from dataclasses import dataclass

STATES = (
    "appointed",
    "accepted",
    "materials_pending",
    "materials_collected",
    "lodged",
    "under_review",
    "result",
    "returned_to_resident",
    "completed",
    "cancelled",
    "failed",
)
STATE_LABELS = {
    "appointed": "已预约",
    "accepted": "已受理",
    "materials_pending": "待补材料",
    "materials_collected": "已收件",
    "lodged": "已递交",
    "under_review": "部门审核中",
    "result": "已出结果",
    "returned_to_resident": "已送还",
    "completed": "已办结",
    "cancelled": "已取消",
    "failed": "办理失败",
}
FINAL_STATES = frozenset({"completed", "cancelled", "failed"})
# Open steps: an errand here can still be cancelled or fail.
OPEN_STATES = (
    "appointed",
    "accepted",
    "materials_pending",
    "materials_collected",
    "lodged",
    "under_review",
    "result",
)
# Steps that carry a clock of their own (a type's version gives each its limit). materials_pending has none:
# it pauses the clock of the step it interrupts (accepted).
CLOCKED_STATES = (
    "appointed",
    "accepted",
    "materials_collected",
    "lodged",
    "under_review",
    "result",
    "returned_to_resident",
)
# The step whose clock materials_pending pauses.
PAUSED_BY_PENDING = "accepted"
# Steps the agent carries out: the errand is in their queue.
AGENT_STATES = frozenset(
    {"accepted", "materials_pending", "materials_collected", "lodged", "under_review", "result"}
)

OWNER = "owner"
SECRETARY = "secretary"
STREET_ADMIN = "street_admin"
AGENT = "proxy_agent"
SYSTEM = "system"
OVERSEERS = frozenset({SECRETARY, STREET_ADMIN})
STEP_OWNERS = ("secretary", "proxy_agent", "office", "resident")

ACTION_LABELS = {
    "create": "预约代办",
    "accept": "受理",
    "assign": "指派代办员",
    "record_info": "登记个人信息",
    "request_materials": "通知补材料",
    "collect": "收件",
    "lodge": "递交",
    "review": "部门审核",
    "record_result": "登记结果",
    "return_to_resident": "送还居民",
    "complete": "办结",
    "rate": "评价",
    "cancel": "取消",
    "fail": "办理失败",
    # Not a step: the street's 督办, written on the timeline beside the steps.
    "supervise": "督办",
}
# How each action reads in the resident's timeline (plain words); the note follows.
ACTION_SENTENCES = {
    "create": "您预约了代办事项",
    "accept": "社区已受理，资格和材料已初审，并安排了代办员",
    "assign": "社区为您更换了代办员",
    "record_info": "登记了办理所需的个人信息（已加密保存）",
    "request_materials": "还缺少一些材料，请您补齐（此期间不计办理时限）",
    "collect": "代办员已收齐材料，并与您签了交接单",
    "lodge": "代办员已把材料递交给办理部门",
    "review": "办理部门正在审核",
    "record_result": "办理结果出来了",
    "return_to_resident": "代办员已把结果和原件送还给您",
    "complete": "代办事项已办结",
    "rate": "您评价了本次代办",
    "cancel": "代办已取消",
    "fail": "代办未能办成",
    "warning": "即将到达本步骤的办理时限",
    "overdue": "本步骤已超过办理时限，已列入督办",
    "supervise": "街道已将本代办列入督办",
    "remind_materials": "提醒您补齐材料",
}


@dataclass(frozen=True)
class Transition:
    to: str
    actors: frozenset[str]


def _t(to: str, *actors: str) -> Transition:
    return Transition(to, frozenset(actors))


TABLE: dict[tuple[str, str], Transition] = {
    ("appointed", "accept"): _t("accepted", SECRETARY, STREET_ADMIN),
    ("accepted", "request_materials"): _t("materials_pending", AGENT),
    ("accepted", "collect"): _t("materials_collected", AGENT),
    ("materials_pending", "collect"): _t("materials_collected", AGENT),
    ("materials_collected", "lodge"): _t("lodged", AGENT),
    ("lodged", "review"): _t("under_review", AGENT),
    # Some offices answer at the counter (a pharmacy): the result follows the lodging directly.
    ("lodged", "record_result"): _t("result", AGENT),
    ("under_review", "record_result"): _t("result", AGENT),
    ("result", "return_to_resident"): _t("returned_to_resident", AGENT),
    # SYSTEM: the resident's confirmation step, run out, completes by itself (service._on_overdue).
    ("returned_to_resident", "complete"): _t("completed", OWNER, AGENT, SECRETARY, STREET_ADMIN, SYSTEM),
    ("completed", "rate"): _t("completed", OWNER),
}
for _state in OPEN_STATES:
    TABLE[(_state, "cancel")] = _t("cancelled", OWNER, SECRETARY, STREET_ADMIN)
    TABLE[(_state, "fail")] = _t("failed", AGENT, SECRETARY, STREET_ADMIN)
    TABLE[(_state, "record_info")] = _t(_state, OWNER, AGENT, SECRETARY, STREET_ADMIN)
    if _state != "appointed":
        TABLE[(_state, "assign")] = _t(_state, SECRETARY, STREET_ADMIN)

ACTIONS = tuple(dict.fromkeys(action for _, action in TABLE))


def transition(state: str, action: str) -> Transition | None:
    """Return the transition for an action in a state, or None when the action does not exist there."""
    return TABLE.get((state, action))


def can(state: str, action: str, actors: frozenset[str] | set[str]) -> bool:
    """Whether any of the caller's capacities may take the action in this state."""
    found = TABLE.get((state, action))
    return found is not None and bool(found.actors & set(actors))


def allowed_actions(state: str, actors: frozenset[str] | set[str]) -> list[str]:
    """The actions this caller may take in this state, in the table's order."""
    return [action for (s, action), t in TABLE.items() if s == state and t.actors & set(actors)]


def transition_actors(action: str) -> frozenset[str]:
    """Everyone who may take an action in some state."""
    return frozenset().union(*(t.actors for (_, a), t in TABLE.items() if a == action))
