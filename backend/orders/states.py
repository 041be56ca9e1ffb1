"""The order's state machine as a table: state × action → next state, and who may take the action.

Pure: no Flask, no database. The service asks it whether an action is allowed and what comes next; the
409 for an illegal action lists ``allowed_actions`` for the caller, so the mini-program shows the right
buttons. Beside the table, the rules that need the order's data (within 2 working days of dispatch, within
7 days of resolution, one extension, a request pending): the service reads the data (``Facts``), these
rules decide, for the action taken and for the actions offered alike, so a button shown is one that works.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from backend.sla.rules import Limit

STATES = (
    "submitted",
    "accepted",
    "rejected",
    "dispatched",
    "returned",
    "taken",
    "in_progress",
    "suspended",
    "resolved",
    "closed",
    "cancelled",
)
STATE_LABELS = {
    "submitted": "已点单",
    "accepted": "已受理",
    "rejected": "已驳回",
    "dispatched": "待签收",
    "returned": "已退单",
    "taken": "已签收",
    "in_progress": "办理中",
    "suspended": "待补充",
    "resolved": "已回单",
    "closed": "已办结",
    "cancelled": "已取消",
}
# The order is finished with; nothing but a reopen (closed, within 7 days) or a rating can follow.
FINAL_STATES = frozenset({"rejected", "closed", "cancelled"})
# An organization holds it: the resident's contact details are visible to that organization.
HELD_STATES = frozenset({"taken", "in_progress", "suspended", "resolved"})

# Who acts. "owner" is the resident who placed the order (or for whom it was entered); "system" is Sandan.
OWNER = "owner"
SECRETARY = "secretary"
STREET_ADMIN = "street_admin"
ORG_ADMIN = "org_admin"
VOLUNTEER = "volunteer"
SYSTEM = "system"

OVERSEERS = frozenset({SECRETARY, STREET_ADMIN})
DOERS = frozenset({ORG_ADMIN, VOLUNTEER})

ACTION_LABELS = {
    "place": "点单",
    "accept": "受理",
    "reject": "驳回",
    "dispatch": "派单",
    "redispatch": "改派",
    "take": "接单",
    "return": "退单",
    "assign": "指派志愿者",
    "start": "开始办理",
    "suspend": "暂停（待补充）",
    "resume": "继续办理",
    "request_extension": "申请延期",
    "approve_extension": "批准延期",
    "deny_extension": "不批准延期",
    "resolve": "回单",
    "confirm": "确认办结",
    "rate": "评价",
    "auto_close": "自动办结",
    "reopen": "重办",
    "cancel": "取消",
    # What Sandan writes on the timeline by itself.
    "warning": "黄牌预警",
    "overdue": "超时",
    "supervise": "督办",
    # Sandan could not dispatch an urgent order (nobody able to take it, or nobody else left): to a person.
    "auto_dispatch_failed": "转人工派单",
}


@dataclass(frozen=True)
class Transition:
    to: str
    actors: frozenset[str]


def _t(to: str, *actors: str) -> Transition:
    return Transition(to, frozenset(actors))


TABLE: dict[tuple[str, str], Transition] = {
    ("submitted", "accept"): _t("accepted", SECRETARY, STREET_ADMIN),
    ("submitted", "reject"): _t("rejected", SECRETARY, STREET_ADMIN),
    # Dispatching a new order accepts it in the same step.
    ("submitted", "dispatch"): _t("dispatched", SECRETARY, STREET_ADMIN, SYSTEM),
    ("submitted", "cancel"): _t("cancelled", OWNER),
    ("accepted", "dispatch"): _t("dispatched", SECRETARY, STREET_ADMIN, SYSTEM),
    ("accepted", "cancel"): _t("cancelled", OWNER, SECRETARY, STREET_ADMIN),
    # Dispatching again (another organization, or nobody took it in time): its own action, so two
    # secretaries dispatching a new order at once do not both "win" (the second gets 409).
    ("dispatched", "redispatch"): _t("dispatched", SECRETARY, STREET_ADMIN, SYSTEM),
    ("dispatched", "take"): _t("taken", ORG_ADMIN),
    ("dispatched", "return"): _t("returned", ORG_ADMIN),
    ("dispatched", "cancel"): _t("cancelled", OWNER, SECRETARY, STREET_ADMIN),
    ("returned", "dispatch"): _t("dispatched", SECRETARY, STREET_ADMIN, SYSTEM),
    ("returned", "cancel"): _t("cancelled", OWNER, SECRETARY, STREET_ADMIN),
    ("taken", "assign"): _t("taken", ORG_ADMIN),
    ("taken", "start"): _t("in_progress", ORG_ADMIN, VOLUNTEER),
    ("taken", "resolve"): _t("resolved", ORG_ADMIN, VOLUNTEER),
    ("taken", "request_extension"): _t("taken", ORG_ADMIN),
    ("taken", "approve_extension"): _t("taken", SECRETARY, STREET_ADMIN),
    ("taken", "deny_extension"): _t("taken", SECRETARY, STREET_ADMIN),
    # Once an organization has taken it, only the community may call it off (with the resident's word).
    ("taken", "cancel"): _t("cancelled", SECRETARY, STREET_ADMIN),
    ("in_progress", "assign"): _t("in_progress", ORG_ADMIN),
    ("in_progress", "suspend"): _t("suspended", ORG_ADMIN, VOLUNTEER),
    ("in_progress", "resolve"): _t("resolved", ORG_ADMIN, VOLUNTEER),
    ("in_progress", "request_extension"): _t("in_progress", ORG_ADMIN),
    ("in_progress", "approve_extension"): _t("in_progress", SECRETARY, STREET_ADMIN),
    ("in_progress", "deny_extension"): _t("in_progress", SECRETARY, STREET_ADMIN),
    ("in_progress", "cancel"): _t("cancelled", SECRETARY, STREET_ADMIN),
    ("suspended", "resume"): _t("in_progress", ORG_ADMIN, VOLUNTEER),
    ("suspended", "request_extension"): _t("suspended", ORG_ADMIN),
    ("suspended", "approve_extension"): _t("suspended", SECRETARY, STREET_ADMIN),
    ("suspended", "deny_extension"): _t("suspended", SECRETARY, STREET_ADMIN),
    ("suspended", "cancel"): _t("cancelled", SECRETARY, STREET_ADMIN),
    ("resolved", "confirm"): _t("closed", OWNER),
    ("resolved", "auto_close"): _t("closed", SYSTEM),
    # A dispute goes back to the organization that resolved it, dispatched again.
    ("resolved", "reopen"): _t("dispatched", OWNER),
    ("closed", "reopen"): _t("dispatched", OWNER),
    # An auto-closed order can still be rated once.
    ("closed", "rate"): _t("closed", OWNER),
}

ACTIONS = tuple(dict.fromkeys(action for _, action in TABLE))


def transition(state: str, action: str) -> Transition | None:
    """Return the transition for an action in a state, or None when the action does not exist there."""
    return TABLE.get((state, action))


def can(state: str, action: str, actors: frozenset[str] | set[str]) -> bool:
    """Whether any of the caller's capacities may take the action in this state."""
    found = TABLE.get((state, action))
    return found is not None and bool(found.actors & set(actors))


def allowed_actions(state: str, actors: frozenset[str] | set[str], facts: "Facts | None" = None) -> list[str]:
    """The actions this caller may take in this state, in the table's order; given the order's ``facts``,
    only those its data allows now (None: the table alone)."""
    return [
        action
        for (s, action), t in TABLE.items()
        if s == state and t.actors & set(actors) and (facts is None or refusal(action, facts) is None)
    ]


def transition_actors(action: str) -> frozenset[str]:
    """Everyone who may take an action in some state."""
    return frozenset().union(*(t.actors for (_, a), t in TABLE.items() if a == action))


# Rules that need the order's data.

REOPEN_WITHIN = timedelta(days=7)


class Facts(Protocol):
    """What the rules read of an order and its policy; the service reads each only when a rule asks, so an
    order's page pays only for the actions its table leaves the viewer."""

    now: datetime
    kind_label: str  # the order's service kind, in Chinese
    rated: bool
    resolved_at: datetime | None
    return_within: Limit | None  # the policy's window for returning after dispatch; None: not allowed
    return_deadline: datetime  # the window's end, in working time from dispatch (read only with a window)
    extension_limit: Limit | None  # the policy's longest extension; None: not allowed
    extension_pending: bool
    extension_granted: bool
    completion_past_due: bool  # the completion clock's deadline has passed, its red card raised or not
    approval_refused: str | None  # why the completion clock would not take the extension asked, if not


def _rate(facts: Facts) -> str | None:
    return "该工单已评价过" if facts.rated else None


def _reopen(facts: Facts) -> str | None:
    if facts.resolved_at is None or facts.now > facts.resolved_at + REOPEN_WITHIN:
        return "回单 7 天后不能再申请重办"
    return None


def _return(facts: Facts) -> str | None:
    if facts.return_within is None:
        return f"{facts.kind_label}服务不允许退单"
    if facts.now > facts.return_deadline:
        return f"派单后{facts.return_within.label()}内才能退单"
    return None


def _request_extension(facts: Facts) -> str | None:
    if facts.extension_limit is None:
        return f"{facts.kind_label}服务不允许延期"
    if facts.extension_granted or facts.extension_pending:
        return "每张工单只能延期一次"
    if facts.completion_past_due:  # the secretary could not approve it
        return "已超时，不能再申请延期"
    return None


def _deny_extension(facts: Facts) -> str | None:
    return None if facts.extension_pending else "没有待审批的延期申请"


def _approve_extension(facts: Facts) -> str | None:
    return _deny_extension(facts) or facts.approval_refused


_RULES = {
    "rate": _rate,
    "reopen": _reopen,
    "return": _return,
    "request_extension": _request_extension,
    "approve_extension": _approve_extension,
    "deny_extension": _deny_extension,
}


# The 409's code where a refusal has its own, for programs: an order rated already.
REFUSAL_CODES = {"rate": "already_rated"}


def refusal(action: str, facts: Facts) -> str | None:
    """Why the order's data refuses an action the table allows (the 409's message), or None."""
    rule = _RULES.get(action)
    return None if rule is None else rule(facts)
