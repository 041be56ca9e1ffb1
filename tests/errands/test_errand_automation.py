"""What Sandan does to errands by itself, walked with a frozen clock through real RQ jobs: reminders about
missing materials (surviving a Redis flush, never twice), a paused step that never runs out, and a step
that does, raising its red card and landing on the overdue list; and the agent told when someone calls
their errand off."""

from datetime import timedelta

import pytest
import time_machine
from redis import Redis
from sqlalchemy import func, select, update

from backend import clock
from backend.auth.roles import Role, ScopeType
from backend.db import db
from backend.errands import service
from backend.errands.models import Errand, ErrandEvent
from backend.notify.models import Notification
from backend.outbox.models import OutboxMessage
from backend.sla import clocks
from backend.supervision.models import Supervision
from tests.errands.errand_helpers import HANDOVER, accept, consent, row
from tests.factories import login_headers
from tests.worker_process import run_due_jobs


@pytest.fixture
def connection(app):
    from workers import app_context

    app_context.use(app)
    yield Redis.from_url(app.config["REDIS_URL"])
    app_context.use(None)


def reminders(errand: dict) -> list[int]:
    db.session.expire_all()
    return [
        e.data["count"]
        for e in db.session.scalars(
            select(ErrandEvent).where(
                ErrandEvent.errand_id == row(errand).id, ErrandEvent.action == "remind_materials"
            )
        )
    ]


def next_reminder_at(errand: dict):
    db.session.expire_all()
    return db.session.scalar(
        select(func.max(OutboxMessage.run_at)).where(OutboxMessage.job == service.REMIND_JOB)
    )


def test_missing_materials_are_reminded_on_schedule_once_each_even_after_a_flush(
    create, act, world, connection, client, fake_wechat
):
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        errand = create()
        errand = act(
            "secretary_a",
            errand,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="资格初审通过",
        )
        errand = act("agent_a", errand, "request_materials", missing=["income_property_proof"])
        run_due_jobs(connection)
        first = next_reminder_at(errand)
        assert first > start and reminders(errand) == []

        traveller.move_to(first + timedelta(seconds=1))
        run_due_jobs(connection)
        assert reminders(errand) == [1]
        second = next_reminder_at(errand)
        assert second > first

        # Redis loses the scheduled second reminder; the sweep, once it falls due, sends it again.
        connection.flushdb()
        traveller.move_to(second + timedelta(seconds=1))
        assert clocks.sweep(connection=connection).resent >= 1
        run_due_jobs(connection)
        run_due_jobs(connection)
        assert reminders(errand) == [1, 2]
        texts = [
            n.body
            for n in db.session.scalars(
                select(Notification).where(Notification.user_id == world.users["resident_a1"].id)
            )
            if "待补材料" in n.body
        ]
        assert len(texts) == 3 and all("收入及财产证明" in t for t in texts)

        # The materials arrive: the third reminder, when it comes, does nothing.
        third = next_reminder_at(errand)
        fresh = login_headers(client, fake_wechat, world.users["agent_a"])
        collected = client.post(
            f"/api/v1/errands/{errand['id']}/collect",
            headers=fresh,
            json=dict(
                materials=[
                    "application_form",
                    "household_register",
                    "id_copies",
                    "financial_check_authorization",
                    "income_property_proof",
                ],
                handover={
                    "number": "J1",
                    "handed_over_by": "王秀英",
                    "received_by": "agent_a",
                    "signed": True,
                },
            ),
        )
        assert collected.status_code == 200, collected.get_json()
        traveller.move_to(third + timedelta(seconds=1))
        run_due_jobs(connection)
    assert reminders(errand) == [1, 2]


def test_a_step_that_runs_out_is_overdue_while_a_paused_one_is_not(
    create, act, world, connection, client, fake_wechat
):
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        late = create(type="disability_certificate")
        late = act(
            "secretary_a",
            late,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="需陪同评定",
        )
        waiting = create(type="disability_certificate")
        waiting = act(
            "secretary_a",
            waiting,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="需陪同",
        )
        waiting = act("agent_a", waiting, "request_materials", missing=["photos"])
        due = row(late).due_at
        warn_at = next(c for c in service.step_clocks(row(late)) if c.name == "accepted").warn_at
        run_due_jobs(connection)
        traveller.move_to(warn_at + timedelta(seconds=1))
        run_due_jobs(connection)
        traveller.move_to(due + timedelta(seconds=1))
        run_due_jobs(connection)
        fresh = login_headers(client, fake_wechat, world.users["secretary_a"])
        overdue = client.get("/api/v1/errands/overdue", headers=fresh).get_json()
        records = client.get("/api/v1/supervisions", headers=fresh).get_json()["items"]
    assert [e["id"] for e in overdue["items"]] == [late["id"]]
    # The 督办 names the errand it is about (it read "残疾证办理" alone, one like any other of the type, with
    # nothing to open it by).
    assert [(r["title"], r["reason_label"], r["subject"]) for r in records] == [
        (
            f"残疾证办理（{late['number']}）",
            "超时未办",
            {
                "type": "errand",
                "type_label": "代办",
                "id": late["id"],
                "number": late["number"],
                "title": "残疾证办理",
                "page": f"pages/errands/detail?id={late['id']}",
            },
        )
    ]
    assert row(late).is_overdue and not row(waiting).is_overdue
    actions = [e.action for e in service.timeline(row(late))]
    assert "warning" in actions and actions[-1] == "overdue"
    assert db.session.scalar(select(Supervision.reason)) == "overdue"
    accepted_clock = next(c for c in service.step_clocks(row(waiting)) if c.name == "accepted")
    assert accepted_clock.state == "paused" and accepted_clock.overdue_at is None


def test_a_reminder_that_meets_the_materials_arriving_says_nothing(create, act, world):
    errand = create()
    act(
        "secretary_a",
        errand,
        "accept",
        agent_id=world.users["agent_a"].public_id,
        eligibility_note="资格初审通过",
    )
    act("agent_a", errand, "request_materials", missing=["income_property_proof"])
    waiting = row(errand)  # what the reminder job read, a moment before the agent's collection committed
    pending_since = waiting.pending_since.isoformat()
    with db.engine.begin() as other:
        other.execute(
            update(Errand)
            .where(Errand.id == waiting.id)
            .values(state="materials_collected", pending_since=None, version=Errand.version + 1)
        )
    sent = service.remind_materials(errand_id=waiting.id, pending_since=pending_since, count=1)
    db.session.commit()
    assert sent is False and reminders(errand) == []
    assert "remind_materials" not in [e.action for e in service.timeline(row(errand))]


def test_a_result_the_resident_never_confirms_completes_by_itself(create, act, world, connection):
    """The resident's own step (居民确认, 5 working days) warns nobody and raises no 督办 when it runs out:
    the errand is done (办结) by the system, as an order resolved and never confirmed closes by itself."""
    from tests.errands.errand_helpers import SUBSISTENCE_MATERIALS

    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        errand = accept(act, world, create(), note="符合")
        act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
        act("agent_a", errand, "lodge", office="幸福街道社会救助窗口", receipt_number="SJ-1")
        act("agent_a", errand, "record_result", outcome="approved", note="符合条件", amount_fen=76000)
        errand = act("agent_a", errand, "return_to_resident", note="结果通知书已交还")
        confirming = next(c for c in service.step_clocks(row(errand)) if c.name == "returned_to_resident")
        assert not confirming.escalates
        run_due_jobs(connection)
        traveller.move_to(confirming.warn_at + timedelta(seconds=1))
        run_due_jobs(connection)
        assert row(errand).state == "returned_to_resident"
        traveller.move_to(confirming.due_at + timedelta(seconds=1))
        run_due_jobs(connection)
    db.session.expire_all()
    done = row(errand)
    assert done.state == "completed" and not done.is_overdue and done.completed_at is not None
    last = service.timeline(done)[-1]
    assert (last.action, last.actor_id, last.note) == (
        "complete",
        None,
        "居民5个工作日内未确认，系统自动办结",
    )
    assert "warning" not in [e.action for e in service.timeline(done)]
    assert db.session.scalar(select(func.count()).select_from(Supervision)) == 0


def _run_step_actions(errand: dict) -> None:
    """What the worker does with the errand's errands.step_actions jobs (each event's, once)."""
    for event in service.timeline(row(errand)):
        service.step_actions(errand_id=row(errand).id, event_id=event.id)
    db.session.commit()


def _inbox(user) -> list[Notification]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


@pytest.mark.parametrize(
    ("who", "ending", "title", "said"),
    [
        ("resident_a1", "cancel", "代办已取消", "已取消"),
        ("secretary_a", "fail", "代办已终止", "已按办理失败终止"),
    ],
    ids=["cancelled_by_the_resident", "failed_by_the_community"],
)
@pytest.mark.parametrize("collected", [False, True], ids=["before_collecting", "holding_the_cash"])
def test_the_agent_hears_that_their_errand_was_called_off(
    create, act, world, collected, who, ending, title, said
):
    # The agent heard of new work only: called off by the resident (or ended by the community), they went on
    # with it, the resident's cash in their pocket.
    consent(world, "resident_a1", "entrustment", "health")
    items = [{"drug_name": "维生素C", "quantity": "1瓶"}]
    errand = create(type="medicine_purchase", items=items)
    accept(act, world, errand, note="高龄独居")
    money = {}
    if collected:
        materials = ["drug_list", "insurance_card", "cash"]
        act("agent_a", errand, "collect", materials=materials, handover=HANDOVER, cash_received_fen=10000)
        money = {"change_returned_fen": 10000}
    _run_step_actions(errand)
    agent = world.users["agent_a"]
    before = len(_inbox(agent))
    act(who, errand, ending, reason="家人已代买", **money)
    _run_step_actions(errand)
    told = _inbox(agent)[before:]
    assert [(n.title, n.event, n.page) for n in told] == [
        (title, "errand_step_changed", f"pages/errands/detail?id={errand['id']}")
    ]
    if collected:
        assert told[0].body.startswith(f"「代购药品」{said}，请停止办理，并将代收的现金退还居民。\n")
        assert "备注：现金 100.00 元；家人已代买" in told[0].body
    else:
        assert told[0].body.startswith(f"「代购药品」{said}，请停止办理。\n")
        assert "备注：家人已代买" in told[0].body
    if who != "resident_a1":
        return
    # The resident did it themself: nothing for them.
    assert not [n for n in _inbox(world.users["resident_a1"]) if "取消" in n.title + n.body]


def _told(user, errand: dict) -> list[tuple[str, str]]:
    return [(n.title, n.body.split("\n")[0]) for n in _inbox(user) if n.subject_id == row(errand).id]


@pytest.mark.parametrize("booked_by", ["resident_a1", "secretary_a"])
def test_the_community_hears_of_an_errand_waiting_to_be_received(create, world, booked_by):
    # Orders ask the secretaries to accept them (新工单); an errand a resident booked waited unheard of until
    # its yellow card, a working day before its 受理 ran out.
    from tests.factories import make_member

    other = make_member(
        Role.SECRETARY, ScopeType.COMMUNITY, world.community_a.id, openid="openid-secretary-a2", nickname="a2"
    )
    body = {"resident_id": world.users["resident_a1"].public_id} if booked_by != "resident_a1" else {}
    errand = create(person=booked_by, **body)
    _run_step_actions(errand)
    waiting = ("新代办待受理", "居民预约了代办「低保申请」，请及时受理。")
    assert _told(other, errand) == [waiting]
    # The secretary who booked it for the resident knows; the other community's does not hear.
    assert _told(world.users["secretary_a"], errand) == ([] if booked_by == "secretary_a" else [waiting])
    assert _told(world.users["secretary_b"], errand) == []


def test_a_late_job_does_not_ask_to_receive_an_errand_already_received(create, act, world):
    errand = create()
    accept(act, world, errand)
    _run_step_actions(errand)
    assert [t for t, _ in _told(world.users["secretary_a"], errand)] == []


def test_the_agents_hear_of_new_work_and_of_work_given_to_another(create, act, world):
    # The agent's notice read as a resident's ("您的代办「低保申请」进度：新代办。"), and the agent an errand
    # was taken from was never told: it stayed on their mind (and in their hands) while another did it.
    errand = create()
    accept(act, world, errand)
    service.step_actions(errand_id=row(errand).id, event_id=service.timeline(row(errand))[-1].id)
    db.session.commit()
    first, second = world.users["agent_a"], world.users["agent_a2"]
    new_work = ("新的代办任务", "您有一件新的代办「低保申请」，请及时办理。")
    assert _told(first, errand) == [new_work]
    act("secretary_a", errand, "assign", agent_id=second.public_id, note="小李休假")
    service.step_actions(errand_id=row(errand).id, event_id=service.timeline(row(errand))[-1].id)
    db.session.commit()
    assert _told(second, errand) == [new_work]
    assert _told(first, errand) == [
        new_work,
        ("代办已改派", "「低保申请」已改派给其他代办员，您无需再办理。"),
    ]
    # The resident reads that their agent changed, not that the errand was accepted again.
    resident = _told(world.users["resident_a1"], errand)
    assert resident[-1] == ("代办进度更新", "您的代办「低保申请」进度：更换代办员。")


def test_the_agent_holding_a_step_hears_its_yellow_and_red_cards(create, act, world):
    # The cards of the agent's own steps went to the secretaries and the street only: the one person who
    # could still collect the materials in time heard nothing.
    with time_machine.travel(clock.now(), tick=False) as traveller:
        errand = create(type="disability_certificate")
        accept(act, world, errand)
        step = next(c for c in service.step_clocks(row(errand)) if c.name == "accepted")
        traveller.move_to(step.warn_at + timedelta(seconds=1))
        assert clocks.raise_warning(clock_id=step.id)
        db.session.commit()
        traveller.move_to(step.due_at + timedelta(seconds=1))
        assert clocks.raise_overdue(clock_id=step.id)
        db.session.commit()
    cards = [
        (n.title, n.body.split("\n")[0])
        for n in _inbox(world.users["agent_a"])
        if n.event != "errand_step_changed"
    ]
    assert cards == [
        ("黄牌预警", "「残疾证办理」临近办理时限，请抓紧办理。"),
        ("督办提醒", "「残疾证办理」已列入督办，请尽快处理。"),
    ]
    # The other agent of the community has nothing to do with it.
    assert _inbox(world.users["agent_a2"]) == []
