"""Each starting errand type from creation to completion through the HTTP API with a real worker process:
a materials-pending pause, a refusal, a cancellation, and Redis flushed in the middle. The resident hears
of every step someone else took exactly once, even after the flush."""

import time

from redis import Redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from backend.db import db
from backend.errands import service
from backend.notify.models import Notification
from backend.outbox import service as outbox
from backend.outbox.models import OutboxMessage
from backend.sla import clocks
from tests.errands.errand_helpers import HANDOVER, SUBSISTENCE_MATERIALS, consent, row
from tests.worker_process import running_worker, wait_for

ID = "110105194901010128"


def step_notices(user, errand: dict) -> int:
    db.session.expire_all()
    return db.session.scalar(
        select(func.count()).where(
            Notification.user_id == user.id,
            Notification.event == "errand_step_changed",
            Notification.subject_type == "errand",
            Notification.subject_id == row(errand).id,
        )
    )


def owed_notices(errand: dict) -> int:
    """Events someone other than the resident caused that the resident is told of (one notice each)."""
    errand_row = row(errand)
    return sum(
        1
        for e in service.timeline(errand_row)
        if e.actor_id not in (None, errand_row.resident_id) and e.action not in service.QUIET_ACTIONS
    )


def settled(world, errand: dict, what: str) -> None:
    resident = world.users["resident_a1"]
    wait_for(lambda: step_notices(resident, errand) == owed_notices(errand), what=what)


def test_subsistence_allowance_pauses_for_materials_survives_a_redis_flush_and_is_refused(
    app, create, act, world, client, auth, book
):
    connection = Redis.from_url(app.config["REDIS_URL"])
    consent(world, "resident_a1", "entrustment", "id_number", "subsistence")
    with running_worker(app):
        errand = create(
            sensitive={"id_number": ID, "subsistence_status": "城市低保边缘户"},
            description="独居老人",
            appointment_id=book("resident_a1", "subsistence_allowance"),
        )
        booking = client.get(f"/api/v1/appointments/{errand['appointment_id']}", headers=auth("resident_a1"))
        assert booking.get_json()["state"] == "booked"  # this errand's, until the visit (its acceptance)
        errand = act(
            "secretary_a",
            errand,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="户籍在本社区",
            materials=["application_form", "household_register"],
        )
        settled(world, errand, "the acceptance notice")
        booking = client.get(f"/api/v1/appointments/{errand['appointment_id']}", headers=auth("resident_a1"))
        assert booking.get_json()["state"] == "attended"
        agent_told = wait_for(
            lambda: step_notices(world.users["agent_a"], errand) == 1, what="the agent's notice"
        )
        assert agent_told

    # The worker is down; the pause is recorded, relayed to Redis, and Redis loses everything.
    errand = act("agent_a", errand, "request_materials", missing=["income_property_proof"], note="银行流水")
    paused = next(c for c in service.step_clocks(row(errand)) if c.name == "accepted")
    assert paused.state == "paused" and errand["due_at"] is None
    outbox.relay_all(connection=connection)
    reminder = db.session.scalar(select(OutboxMessage).where(OutboxMessage.job == service.REMIND_JOB))
    assert reminder.sent_at is not None and Job.exists(reminder.rq_job_id, connection=connection)
    connection.flushdb()
    assert not Job.exists(reminder.rq_job_id, connection=connection)

    with running_worker(app):
        # What the periodic sweep does: whatever Redis lost that is due soon is sent again...
        assert clocks.sweep(connection=connection).resent >= 1
        settled(world, errand, "the materials-pending notice after the flush")
        # ...and a full rebuild brings back the jobs scheduled for later (the reminder, the clocks' cards).
        outbox.rebuild_lost(connection=connection)
        outbox.relay_all(connection=connection)
        scheduled = ScheduledJobRegistry("default", connection=connection).get_job_ids()
        assert reminder.rq_job_id in scheduled
        errand = act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
        assert errand["state"] == "materials_collected" and errand["handover"]["number"] == "JJ-0001"
        errand = act("agent_a", errand, "lodge", office="幸福街道社会救助窗口", receipt_number="SJ-2026-0042")
        errand = act("agent_a", errand, "review", note="入户调查已完成，公示 7 天")
        errand = act("agent_a", errand, "record_result", outcome="refused", note="家庭人均收入超过标准")
        assert errand["outcome_label"] == "未批准"
        errand = act("agent_a", errand, "return_to_resident", note="原件已退回")
        errand = act("resident_a1", errand, "complete")
        errand = act("resident_a1", errand, "rate", level=4, comment="很耐心")
        settled(world, errand, "every step's notice")
        time.sleep(1.5)  # nothing further arrives late: each notice came exactly once
        assert step_notices(world.users["resident_a1"], errand) == owed_notices(errand) == 7

    assert errand["state"] == "completed" and errand["rating_label"] == "满意"
    assert [e["action"] for e in errand["timeline"]] == [
        "create", "accept", "request_materials", "collect", "lodge", "review", "record_result",
        "return_to_resident", "complete", "rate",
    ]  # fmt: skip
    finished = service.step_clocks(row(errand))
    assert {c.state for c in finished} == {"stopped"}
    assert [c.name for c in finished if c.stop_reason == "met"] == [
        "appointed", "accepted", "materials_collected", "lodged", "under_review", "result",
        "returned_to_resident",
    ]  # fmt: skip
    # The reminder, still scheduled, finds the materials arrived and does nothing.
    assert service.remind_materials(**reminder.args) is False


def test_medicine_purchase_balances_the_cash_and_a_second_one_is_cancelled(
    app, create, act, world, upload, client, auth, book
):
    consent(world, "resident_a1", "entrustment", "insurance_card", "health")
    items = [
        {
            "drug_name": "硝苯地平控释片",
            "quantity": "3盒",
            "prescription_required": True,
            "prescription_present": True,
        },
        {"drug_name": "维生素C片", "quantity": "1瓶"},
    ]
    with running_worker(app):
        errand = create(
            type="medicine_purchase",
            items=items,
            sensitive={"insurance_card": "M1234567890"},
            appointment_id=book("resident_a1", "medicine_purchase"),
        )
        assert errand["insurance_card"] == "M12****7890"
        errand = act(
            "secretary_a",
            errand,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="高龄独居",
        )
        errand = act(
            "agent_a",
            errand,
            "collect",
            materials=["drug_list", "insurance_card", "cash", "prescription"],
            handover=HANDOVER,
            cash_received_fen=20000,
        )
        # The drug names are masked even for the agent; the prescription flags stay whole. The agent reads
        # the whole list through a logged reveal.
        assert errand["items"][0] == {
            "drug_name": "硝******",
            "quantity": "3盒",
            "prescription_required": True,
            "prescription_present": True,
        }
        assert errand["cash_received_fen"] == 20000
        revealed = client.post(
            f"/api/v1/errands/{errand['id']}/reveal",
            json={"field": "items", "reason": "到药房购药"},
            headers=auth("agent_a"),
        ).get_json()
        assert revealed["value"][0]["drug_name"] == "硝苯地平控释片"
        errand = act("agent_a", errand, "lodge", office="社区卫生服务中心药房", receipt_number="YF-7781")
        errand = act(
            "agent_a",
            errand,
            "record_result",
            outcome="approved",
            note="药品已购得",
            amount_spent_fen=15630,
            change_returned_fen=4370,
            receipt_photo_id=upload("agent_a"),
        )
        receipt = client.get(errand["receipts"][0]["url"], headers=auth("resident_a1"))
        assert receipt.status_code == 200 and receipt.mimetype == "image/png"
        small = client.get(errand["receipts"][0]["small_url"], headers=auth("resident_a1"))
        assert small.status_code == 200 and small.data == receipt.data  # small already: as kept
        errand = act(
            "agent_a", errand, "return_to_resident", note="药品、医保卡、找零 43.70 元和票据已当面交还"
        )
        errand = act("agent_a", errand, "complete", note="居民签收")
        assert errand["state"] == "completed"

        second = create(type="medicine_purchase")
        second = act(
            "secretary_a",
            second,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="高龄独居",
        )
        second = act("resident_a1", second, "cancel", reason="家人已代买")
        assert second["state"] == "cancelled" and second["cancelled_by_resident"]
        settled(world, errand, "the purchase's notices")
        settled(world, second, "the cancelled errand's notices")
        time.sleep(1.5)
        assert step_notices(world.users["resident_a1"], errand) == 6
        # Cancelling it themself, the resident is not told what they did; they heard of the acceptance.
        assert step_notices(world.users["resident_a1"], second) == 1
    assert {c.state for c in service.step_clocks(row(second))} == {"stopped"}
    assert row(second).due_at.year == 2999


def test_disability_certificate_booked_by_the_secretary_is_approved_with_a_certificate(
    app, create, act, world, client, auth, book
):
    consent(world, "resident_a1", "entrustment", "id_number", "disability")
    with running_worker(app):
        errand = create(
            "secretary_a",
            type="disability_certificate",
            resident_id=world.users["resident_a1"].public_id,
            sensitive={"id_number": ID, "disability": "肢体残疾"},
            appointment_id=book(
                "secretary_a", "disability_certificate", resident_id=world.users["resident_a1"].public_id
            ),
        )
        errand = act(
            "secretary_a",
            errand,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="行动不便，需陪同评定",
            materials=["id_copy", "household_register"],
        )
        errand = act("agent_a", errand, "request_materials", missing=["photos", "medical_records"])
        errand = act(
            "agent_a",
            errand,
            "collect",
            materials=["photos", "medical_records"],
            handover={**HANDOVER, "number": "JJ-0002"},
        )
        errand = act("agent_a", errand, "lodge", office="区残疾人联合会", receipt_number="CL-2026-118")
        errand = act("agent_a", errand, "review", note="指定医院评定完成，公示 5 个工作日")
        errand = act(
            "agent_a",
            errand,
            "record_result",
            outcome="approved",
            note="准予发证",
            certificate_number="11010519490101012843",
            valid_until="2036-12-01",
        )
        assert errand["certificate_number"] == "110105**********2843"
        shown = client.post(
            f"/api/v1/errands/{errand['id']}/reveal",
            json={"field": "certificate_number", "reason": "核对证书"},
            headers=auth("agent_a"),
        )
        assert shown.get_json()["value"] == "11010519490101012843"
        errand = act("agent_a", errand, "return_to_resident", note="残疾人证已送到家")
        errand = act("resident_a1", errand, "complete")
        settled(world, errand, "every step's notice")
        time.sleep(1.5)
        assert step_notices(world.users["resident_a1"], errand) == owed_notices(errand) == 8
    assert errand["state"] == "completed" and errand["valid_until"] == "2036-12-01"
    assert errand["timeline"][0]["actor_role"] == "secretary"
