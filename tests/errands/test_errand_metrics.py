"""Errand metrics on a small known history: 代办完成率 = completed ÷ (accepted − cancelled by the resident),
a delivered refusal counting as completed; the on-time rate apart, a step late by its deadline whether or not
its red card came; per type, community and month; the average time per step."""

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.errands import service
from backend.errands.models import Errand, ErrandType, ErrandTypeVersion
from backend.sla.models import SlaClock
from tests.errands.errand_helpers import HANDOVER, consent, row

NOV = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
OCT = datetime(2026, 10, 12, 1, 0, tzinfo=UTC)


def make(world, code, state, *, accepted_at=NOV, community=None, outcome=None, by_resident=False, late=False):
    kind = db.session.scalar(select(ErrandType).where(ErrandType.code == code))
    version = db.session.scalar(select(ErrandTypeVersion).where(ErrandTypeVersion.type_id == kind.id))
    community = community or world.community_a
    grid = world.grid_a1 if community is world.community_a else world.grid_b1
    delivered = state in ("returned_to_resident", "completed")
    errand = Errand(
        number=f"T{db.session.query(Errand).count() + 1:06d}",
        type_id=kind.id,
        type_version_id=version.id,
        resident_id=world.users["resident_a1"].id,
        applicant_name="王秀英",
        community_id=community.id,
        grid_id=grid.id,
        state=state,
        outcome=outcome,
        cancelled_by_resident=by_resident,
        accepted_at=accepted_at,
        delivered_at=accepted_at + timedelta(days=20) if delivered else None,
        materials={},
        missing_materials=[],
        items=[],
    )
    db.session.add(errand)
    db.session.flush()
    if late:
        step_clock(errand, "under_review", hours=300, overdue=True)
    return errand


def step_clock(errand, name, *, hours=0, overdue=False, reason="met", on_time=None, due_at=None):
    """A step's clock, stopped ``hours`` after the errand was accepted (met, or for ``reason``); or, given
    ``due_at``, still running towards it."""
    started = errand.accepted_at
    running = due_at is not None
    db.session.add(
        SlaClock(
            subject_type="errand",
            subject_id=errand.id,
            name=name,
            community_id=errand.community_id,
            amount=5,
            unit="working_days",
            state="running" if running else "stopped",
            started_at=started,
            due_at=due_at,
            stopped_at=None if running else started + timedelta(hours=hours),
            stop_reason=None if running else reason,
            overdue_at=started + timedelta(hours=hours - 1) if overdue else None,
            on_time=on_time,
            pauses=[],
            generation=1,
        )
    )


def history(world):
    approved = make(world, "subsistence_allowance", "completed", outcome="approved")
    refused = make(world, "subsistence_allowance", "completed", outcome="refused", late=True)
    make(world, "subsistence_allowance", "cancelled", by_resident=True)
    make(world, "subsistence_allowance", "cancelled")  # by the community, not at the resident's request
    make(world, "medicine_purchase", "failed")
    make(world, "medicine_purchase", "returned_to_resident", outcome="approved")
    make(world, "medicine_purchase", "lodged")
    make(
        world,
        "disability_certificate",
        "completed",
        accepted_at=OCT,
        community=world.community_b,
        outcome="approved",
    )
    make(world, "subsistence_allowance", "appointed", accepted_at=None)  # never accepted: not counted
    step_clock(approved, "accepted", hours=48)
    step_clock(refused, "accepted", hours=24, overdue=True)
    step_clock(approved, "lodged", hours=5, reason="cancelled")  # not a step done: left out
    db.session.commit()


def metrics(client, auth, person="street_admin", **query):
    response = client.get("/api/v1/errands/metrics", query_string=query, headers=auth(person))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_completion_and_on_time_rates_by_type(world, client, auth):
    history(world)
    result = metrics(client, auth, group_by="type")
    rows = {r["key"]: r for r in result["items"]}
    subsistence = rows["subsistence_allowance"]
    assert (subsistence["accepted"], subsistence["cancelled_by_resident"], subsistence["completed"]) == (
        4,
        1,
        2,
    )
    assert subsistence["completion_rate"] == round(2 / 3, 4) and subsistence["refused"] == 1
    assert (subsistence["on_time"], subsistence["on_time_rate"]) == (1, 0.5)
    medicine = rows["medicine_purchase"]
    assert (medicine["accepted"], medicine["completed"], medicine["failed"]) == (3, 1, 1)
    assert medicine["completion_rate"] == round(1 / 3, 4) and medicine["on_time_rate"] == 1.0
    assert rows["disability_certificate"]["completion_rate"] == 1.0
    total = result["total"]
    assert (total["accepted"], total["cancelled_by_resident"], total["completed"]) == (8, 1, 4)
    assert total["completion_rate"] == round(4 / 7, 4) and total["on_time_rate"] == 0.75


def test_by_month_and_community_and_scoped_to_the_viewer(world, client, auth):
    history(world)
    months = {r["key"]: r for r in metrics(client, auth, group_by="month")["items"]}
    assert set(months) == {"2026-10", "2026-11"}
    assert months["2026-11"]["completion_rate"] == 0.5 and months["2026-11"]["label"] == "2026年11月"
    assert months["2026-10"]["completion_rate"] == 1.0
    communities = metrics(client, auth, group_by="community")["items"]
    assert [(r["label"], r["accepted"]) for r in sorted(communities, key=lambda r: r["label"])] == [
        ("和平社区", 1),
        ("阳光社区", 7),
    ]
    # A secretary sees their own community only.
    own = metrics(client, auth, person="secretary_a", group_by="community")
    assert [r["label"] for r in own["items"]] == ["阳光社区"] and own["total"]["completion_rate"] == 0.5
    narrowed = metrics(
        client, auth, group_by="type", since="2026-11-01", until="2026-12-01", type="medicine_purchase"
    )
    assert [r["key"] for r in narrowed["items"]] == ["medicine_purchase"]
    assert client.get("/api/v1/errands/metrics", headers=auth("resident_a1")).status_code == 403
    bad = client.get("/api/v1/errands/metrics?group_by=weather&since=yesterday", headers=auth("street_admin"))
    assert bad.status_code == 422 and set(bad.get_json()["details"]) == {"group_by", "since"}


def test_dates_no_day_can_start_are_422_by_field(world, client, auth):
    # 0001-01-01 starts (in Beijing) before UTC's calendar does: days before 1970 are refused.
    url = "/api/v1/errands/metrics?since=0001-01-01&until=0001-01-02"
    bad = client.get(url, headers=auth("street_admin"))
    assert bad.status_code == 422, bad.get_json()
    assert set(bad.get_json()["details"]) == {"since", "until"}


def test_average_duration_per_step(world, client, auth):
    history(world)
    response = client.get("/api/v1/errands/metrics/steps", headers=auth("street_admin"))
    assert response.status_code == 200
    steps = {(r["type"], r["step"]): r for r in response.get_json()["items"]}
    accepted = steps[("subsistence_allowance", "accepted")]
    assert (accepted["count"], accepted["average_hours"], accepted["overdue"]) == (2, 36.0, 1)
    assert accepted["step_label"] == "已受理"
    assert ("subsistence_allowance", "lodged") not in steps
    assert steps[("subsistence_allowance", "under_review")]["average_hours"] == 300.0


def test_empty_history_has_no_rates(world, client, auth):
    result = metrics(client, auth)
    assert result["items"] == [] and result["total"]["completion_rate"] is None


def steps(client, auth, **query) -> dict:
    response = client.get("/api/v1/errands/metrics/steps", query_string=query, headers=auth("street_admin"))
    assert response.status_code == 200, response.get_json()
    return {(r["type"], r["step"]): r for r in response.get_json()["items"]}


def test_a_step_done_after_its_deadline_is_late_though_no_red_card_came(world, client, auth):
    """A step stopped after its deadline is late, in the on-time rate and the step's overdue count alike."""
    in_time = make(world, "medicine_purchase", "completed", outcome="approved")
    late = make(world, "medicine_purchase", "completed", outcome="approved")
    step_clock(in_time, "accepted", hours=4, on_time=True)
    step_clock(late, "accepted", hours=40, on_time=False)  # its overdue job had not run: no overdue_at
    db.session.commit()
    total = metrics(client, auth)["total"]
    assert (total["completed"], total["on_time"], total["on_time_rate"]) == (2, 1, 0.5)
    accepted = steps(client, auth)[("medicine_purchase", "accepted")]
    assert (accepted["count"], accepted["overdue"]) == (2, 1)


def test_the_residents_own_confirmation_does_not_make_a_delivered_errand_late(world, client, auth):
    """On time means delivered on time: the resident's step after it (confirming receipt), open past its
    deadline or even carded, is theirs, not the community's."""
    waiting = make(world, "subsistence_allowance", "returned_to_resident", outcome="approved")
    carded = make(world, "subsistence_allowance", "completed", outcome="approved")
    step_clock(waiting, "returned_to_resident", due_at=clock.now() - timedelta(hours=1))
    step_clock(carded, "returned_to_resident", hours=200, overdue=True, on_time=False)
    db.session.commit()
    total = metrics(client, auth)["total"]
    assert (total["completed"], total["on_time"]) == (2, 2)


def test_a_purchase_collected_after_its_deadline_is_not_on_time_before_the_card_job_ran(
    create, act, world, client, auth
):
    """Through the real clocks: a step done late counts as late while its overdue job never ran."""
    consent(world, "resident_a1", "entrustment", "health")  # the drug list is health information
    with time_machine.travel(clock.now(), tick=False) as traveller:
        errand = create(type="medicine_purchase")
        act(
            "secretary_a",
            errand,
            "accept",
            agent_id=world.users["agent_a"].public_id,
            eligibility_note="高龄独居",
        )
        due = next(c for c in service.step_clocks(row(errand)) if c.name == "accepted").due_at
        traveller.move_to(due + timedelta(minutes=1))
        act(
            "agent_a",
            errand,
            "collect",
            materials=["drug_list", "insurance_card", "cash"],
            handover=HANDOVER,
            items=[{"drug_name": "硝苯地平缓释片", "quantity": "2盒"}],
            cash_received_fen=10000,
        )
        collected = next(c for c in service.step_clocks(row(errand)) if c.name == "accepted")
        assert (collected.on_time, collected.overdue_at) == (False, None)
        act("agent_a", errand, "lodge", office="幸福大药房", receipt_number="YF-1")
        act("agent_a", errand, "record_result", outcome="refused", note="药店缺货")
        act("agent_a", errand, "return_to_resident", note="现金已退还")
        total = metrics(client, auth)["total"]
        accepted = steps(client, auth)[("medicine_purchase", "accepted")]
    assert (total["completed"], total["on_time"]) == (1, 0)
    assert (accepted["count"], accepted["overdue"]) == (1, 1)


def test_step_durations_count_the_errands_accepted_in_the_period(world, client, auth):
    """/errands/metrics/steps narrows by since/until like /errands/metrics: the errands accepted then."""
    history(world)
    october = db.session.scalar(select(Errand).where(Errand.accepted_at == OCT))
    step_clock(october, "accepted", hours=10)
    db.session.commit()
    assert set(steps(client, auth, since="2026-11-01", until="2026-12-01")) == {
        ("subsistence_allowance", "accepted"),
        ("subsistence_allowance", "under_review"),
    }
    # Local days: accepted at 09:00 on 12 October in Beijing (01:00 UTC), in that day and not before it.
    assert set(steps(client, auth, since="2026-10-12", until="2026-10-13")) == {
        ("disability_certificate", "accepted")
    }
    assert steps(client, auth, until="2026-10-12") == {}
    assert steps(client, auth, since="2090-01-01", until="2091-01-01") == {}
    assert len(steps(client, auth)) == 3
