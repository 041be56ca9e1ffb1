"""A purchase given to another agent while the first holds the resident's cash: the secretary confirms the
cash changed hands (cash_handed_over), the timeline says how much went from whom to whom, and both agents
are told, so that someone always answers for the money."""

from sqlalchemy import select

from backend.db import db
from backend.errands import service
from backend.notify.models import Notification
from tests.errands.errand_helpers import HANDOVER, accept, consent, row

ITEMS = [{"drug_name": "维生素C", "quantity": "1瓶"}]


def _collected(create, act, world) -> dict:
    consent(world, "resident_a1", "entrustment", "health")
    errand = create(type="medicine_purchase", items=ITEMS)
    accept(act, world, errand, note="高龄独居")
    materials = ["drug_list", "insurance_card", "cash"]
    return act("agent_a", errand, "collect", materials=materials, handover=HANDOVER, cash_received_fen=10050)


def _run_step_actions(errand: dict) -> None:
    for event in service.timeline(row(errand)):
        service.step_actions(errand_id=row(errand).id, event_id=event.id)
    db.session.commit()


def _last(user, errand: dict) -> tuple[str, str]:
    db.session.expire_all()
    n = db.session.scalars(
        select(Notification)
        .where(Notification.user_id == user.id, Notification.subject_id == row(errand).id)
        .order_by(Notification.id.desc())
        .limit(1)
    ).one()
    return n.title, n.body


def test_reassigning_an_agent_holding_cash_needs_the_hand_over_confirmed(create, act, world):
    errand = _collected(create, act, world)
    second = world.users["agent_a2"]
    for body in ({}, {"cash_handed_over": False}):
        refused = act("secretary_a", errand, "assign", expect=422, agent_id=second.public_id, **body)
        assert refused["message"] == "代办员持有居民的现金 100.50 元，改派须确认已交给新的代办员"
        assert refused["details"] == {
            "cash_handed_over": ["原代办员持有现金 100.50 元，请确认已当面交给新的代办员后勾选"]
        }
    assert row(errand).agent_id == world.users["agent_a"].id

    moved = act(
        "secretary_a", errand, "assign", agent_id=second.public_id, cash_handed_over=True, note="小李休假"
    )
    assert moved["agent"]["id"] == second.public_id
    last = moved["timeline"][-1]
    assert last["action"] == "assign"
    assert last["text"] == "社区为您更换了代办员：现金 100.50 元已由 agent_a 交给 agent_a2；小李休假"
    event = service.timeline(row(errand))[-1]
    assert event.data == {
        "agent": second.public_id,
        "from_agent": world.users["agent_a"].public_id,
        "cash_handed_over_fen": 10050,
    }

    _run_step_actions(errand)
    title, body = _last(world.users["agent_a"], errand)
    assert title == "代办已改派"
    assert body.startswith(
        "「代购药品」已改派给其他代办员，您无需再办理；您代收的居民现金已登记交给新的代办员。\n"
    )
    assert "备注：现金 100.50 元" in body
    title, body = _last(second, errand)
    assert title == "新的代办任务"
    assert body.startswith("您有一件新的代办「代购药品」，原代办员代收的居民现金已交给您，请妥善保管。\n")
    assert "备注：现金 100.50 元" in body
    # The new agent carries on, and the money balances as before.
    act("agent_a2", errand, "lodge", office="幸福大药房", receipt_number="YF-1")


def test_after_the_result_the_change_is_what_changes_hands(create, act, world, upload):
    errand = _collected(create, act, world)
    act("agent_a", errand, "lodge", office="幸福大药房", receipt_number="YF-1")
    act(
        "agent_a",
        errand,
        "record_result",
        outcome="approved",
        note="已买到",
        amount_spent_fen=8050,
        change_returned_fen=2000,
        receipt_photo_id=upload("agent_a"),
    )
    second = world.users["agent_a2"]
    refused = act("secretary_a", errand, "assign", expect=422, agent_id=second.public_id)
    assert "20.00 元" in refused["message"]
    moved = act("secretary_a", errand, "assign", agent_id=second.public_id, cash_handed_over=True)
    assert moved["timeline"][-1]["text"] == "社区为您更换了代办员：现金 20.00 元已由 agent_a 交给 agent_a2"


def test_without_cash_held_nothing_changes(create, act, world):
    consent(world, "resident_a1", "entrustment", "health")
    purchase = create(type="medicine_purchase", items=ITEMS)
    accept(act, world, purchase)
    second = world.users["agent_a2"].public_id
    # Not collected yet: nothing to hand over, and saying there was is refused by field.
    refused = act("secretary_a", purchase, "assign", expect=422, agent_id=second, cash_handed_over=True)
    assert refused["details"] == {"cash_handed_over": ["原代办员未持有居民现金，无需确认交接"]}
    moved = act("secretary_a", purchase, "assign", agent_id=second, cash_handed_over=False)
    assert moved["timeline"][-1]["text"] == "社区为您更换了代办员"
    plain = create()
    accept(act, world, plain)
    act("secretary_a", plain, "assign", agent_id=second)
    assert "cash_handed_over_fen" not in service.timeline(row(plain))[-1].data
    refused = act("secretary_a", plain, "assign", expect=422, agent_id=second, cash_handed_over="yes")
    assert "cash_handed_over" in refused["details"]


def test_the_agent_who_holds_it_cannot_be_given_it_again(create, act, world):
    """改派 is to another agent: the one holding it (and the resident's cash) is refused by field, so nobody
    is told of a change that is none (更换代办员, 原代办员未持有居民现金)."""
    errand = _collected(create, act, world)
    plain = create()
    accept(act, world, plain)
    same = world.users["agent_a"].public_id
    for item in (errand, plain):
        events = len(service.timeline(row(item)))
        for body in ({}, {"cash_handed_over": True}, {"cash_handed_over": False}):
            refused = act("secretary_a", item, "assign", expect=422, agent_id=same, **body)
            assert refused["details"] == {"agent_id": ["该代办已由这位代办员办理，请选择另一位代办员"]}
        refused = act("street_admin", item, "assign", expect=422, agent_id=same)
        assert "agent_id" in refused["details"]
        assert len(service.timeline(row(item))) == events
        assert row(item).agent_id == world.users["agent_a"].id
    # Another agent still takes it, as before.
    moved = act("secretary_a", plain, "assign", agent_id=world.users["agent_a2"].public_id)
    assert moved["agent"]["id"] == world.users["agent_a2"].public_id
