"""The order state table, pure: consistent with itself and with the URLs of the API."""

import ast
import importlib
import inspect
import pkgutil
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from backend import orders
from backend.orders import service, states
from backend.sla.rules import DEFAULT_POLICIES


def test_every_transition_names_known_states_and_labelled_actions():
    for (state, action), transition in states.TABLE.items():
        assert state in states.STATES and transition.to in states.STATES
        assert action in states.ACTION_LABELS and transition.actors


def test_final_states_only_allow_reopen_and_rating():
    for state, action in states.TABLE:
        if state in states.FINAL_STATES:
            assert (state, action) in {("closed", "reopen"), ("closed", "rate")}


def test_allowed_actions_depend_on_who_asks():
    assert states.allowed_actions("submitted", {states.OWNER}) == ["cancel"]
    assert states.allowed_actions("submitted", {states.SECRETARY}) == ["accept", "reject", "dispatch"]
    assert states.allowed_actions("dispatched", {states.ORG_ADMIN}) == ["take", "return"]
    assert states.allowed_actions("taken", {states.OWNER}) == []
    assert not states.can("taken", "cancel", {states.OWNER})
    assert states.can("taken", "cancel", {states.SECRETARY})


def test_every_action_a_person_takes_has_its_own_url(app):
    routes = {r.rule for r in app.url_map.iter_rules() if "POST" in r.methods}
    people_actions = {a for (_, a), t in states.TABLE.items() if t.actors - {states.SYSTEM}}
    for action in people_actions:
        url = "/api/v1/orders/<string:order_id>/" + action.replace("_", "-")
        assert url in routes, action


def _facts(**changes) -> SimpleNamespace:
    """An order's facts with nothing in the way: the rules' input, as the service reads it."""
    now = datetime(2026, 11, 23, 2, tzinfo=UTC)
    facts = {
        "now": now,
        "kind_label": "日常性",
        "rated": False,
        "resolved_at": now - timedelta(days=1),
        "return_within": DEFAULT_POLICIES["daily"].return_within,
        "return_deadline": now + timedelta(days=1),
        "extension_limit": DEFAULT_POLICIES["daily"].extension,
        "extension_pending": False,
        "extension_granted": False,
        "completion_past_due": False,
        "approval_refused": None,
    }
    return SimpleNamespace(**{**facts, **changes})


def test_actions_the_orders_data_refuses_are_not_allowed():
    ask = {states.OWNER}
    assert states.allowed_actions("closed", ask, _facts()) == ["reopen", "rate"]
    assert states.allowed_actions("closed", ask, _facts(rated=True)) == ["reopen"]
    late = _facts(resolved_at=_facts().now - timedelta(days=7, seconds=1))
    assert states.allowed_actions("closed", ask, late) == ["rate"]
    assert states.refusal("reopen", late) == "回单 7 天后不能再申请重办"
    org = {states.ORG_ADMIN}
    assert states.allowed_actions("dispatched", org, _facts()) == ["take", "return"]
    assert states.allowed_actions("dispatched", org, _facts(return_within=None)) == ["take"]
    last_moment = _facts(return_deadline=_facts().now)
    assert states.allowed_actions("dispatched", org, last_moment) == ["take", "return"]
    past = _facts(return_deadline=_facts().now - timedelta(seconds=1))
    assert states.refusal("return", past) == "派单后2个工作日内才能退单"
    for refused in ({"extension_limit": None}, {"extension_pending": True}, {"extension_granted": True}):
        assert "request_extension" not in states.allowed_actions("taken", org, _facts(**refused))
    assert "request_extension" not in states.allowed_actions("taken", org, _facts(completion_past_due=True))
    overseer = {states.SECRETARY}
    assert states.allowed_actions("taken", overseer, _facts()) == ["cancel"]
    pending = _facts(extension_pending=True)
    decide = ["approve_extension", "deny_extension"]
    assert states.allowed_actions("taken", overseer, pending) == [*decide, "cancel"]
    late = _facts(extension_pending=True, approval_refused="已超时，不能再申请延期")
    assert states.allowed_actions("taken", overseer, late) == ["deny_extension", "cancel"]
    assert states.refusal("approve_extension", late) == "已超时，不能再申请延期"


def _literals(node: ast.AST) -> set[str]:
    """The words an expression can be: a string, or either branch of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _literals(node.body) | _literals(node.orelse)
    return set()


def written_actions() -> set[str]:
    """Every action word the orders' code can write on a timeline, read from its source: a word given as
    ``action`` to any call (by keyword, or in its place among a service function's arguments: _log,
    _simple, _system_event, _begin ...) or assigned to a variable named action."""
    position = {
        name: list(inspect.signature(f).parameters).index("action")
        for name, f in vars(service).items()
        if inspect.isfunction(f) and "action" in inspect.signature(f).parameters
    }
    found: set[str] = set()
    for module in pkgutil.iter_modules(orders.__path__):
        source = inspect.getsource(importlib.import_module(f"backend.orders.{module.name}"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                found |= set().union(*(_literals(k.value) for k in node.keywords if k.arg == "action"))
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in position and len(node.args) > position[name]:
                    found |= _literals(node.args[position[name]])
            elif isinstance(node, ast.Assign) and "action" in {getattr(t, "id", None) for t in node.targets}:
                found |= _literals(node.value)
    return found


def test_every_action_written_on_a_timeline_has_a_chinese_label():
    written = written_actions() | set(states.ACTIONS)
    # What Sandan writes by itself, and the placing, are found (the search itself works).
    assert {"place", "warning", "overdue", "supervise", "auto_dispatch_failed"} <= written
    unlabelled = {a for a in written if not re.search(r"[\u4e00-\u9fff]", states.ACTION_LABELS.get(a, ""))}
    assert unlabelled == set()
