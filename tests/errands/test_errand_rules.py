"""The pipeline's rules through the API: illegal actions are 409 with what is allowed, bad input is 422 by
field, types are versioned data, agents' queues run by deadline, and the timeline reads in plain words."""

import pytest

from backend import clock
from backend.errands import service, states
from tests.errands.errand_helpers import (
    ELDERLY_ALLOWANCE,
    HANDOVER,
    SUBSISTENCE_MATERIALS,
    accept,
    consent,
    row,
)

FIRST_MATERIAL = {
    "subsistence_allowance": "application_form",
    "medicine_purchase": "drug_list",
    "disability_certificate": "id_copy",
}


def accepted(create, act, world, person="resident_a1", **body) -> dict:
    errand = create(person, **body)
    return act(
        "secretary_a",
        errand,
        "accept",
        agent_id=world.users["agent_a"].public_id,
        eligibility_note="户籍在本社区，家庭人均收入低于标准",
        materials=[FIRST_MATERIAL[errand["type"]]],
    )


def test_an_illegal_action_is_409_with_the_allowed_actions(create, act, world):
    errand = accepted(create, act, world)
    refused = act("agent_a", errand, "lodge", expect=409, office="街道", receipt_number="R1")
    assert refused["code"] == "illegal_action"
    assert refused["details"]["state"] == "accepted"
    assert refused["details"]["allowed_actions"] == ["request_materials", "collect", "fail", "record_info"]
    # The resident cannot accept their own errand, nor rate an unfinished one.
    assert act("secretary_a", errand, "accept", expect=409, agent_id="x", eligibility_note="再次受理")[
        "details"
    ]["allowed_actions"] == ["cancel", "fail", "record_info", "assign"]
    assert act("resident_a1", errand, "rate", expect=409, level=5)["details"]["allowed_actions"] == [
        "cancel",
        "record_info",
    ]


def test_nothing_but_rating_follows_a_final_state(create, act, world):
    errand = create()
    cancelled = act("resident_a1", errand, "cancel", reason="已自行办理")
    assert cancelled["state"] == "cancelled" and cancelled["allowed_actions"] == []
    assert (
        act("resident_a1", errand, "cancel", expect=409, reason="再次取消")["details"]["allowed_actions"]
        == []
    )
    assert row(errand).cancelled_by_resident


def test_a_rated_errand_no_longer_offers_a_rating(create, act, world, client, auth):
    # The resident rated it once; the errand went on offering 评价, and the second one was refused (409).
    errand = accepted(create, act, world)
    act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    act("agent_a", errand, "lodge", office="街道社会救助窗口", receipt_number="R1")
    act("agent_a", errand, "record_result", outcome="refused", note="收入超过标准")
    act("agent_a", errand, "return_to_resident")
    completed = act("resident_a1", errand, "complete")
    assert (completed["allowed_actions"], completed["allowed_action_labels"]) == (["rate"], ["评价"])
    rated = act("resident_a1", errand, "rate", level=5)
    assert (rated["allowed_actions"], rated["allowed_action_labels"]) == ([], [])
    seen = client.get(f"/api/v1/errands/{errand['id']}", headers=auth("resident_a1")).get_json()
    assert seen["allowed_actions"] == []
    again = act("resident_a1", errand, "rate", expect=409, level=1)
    assert (again["code"], again["details"]["allowed_actions"]) == ("already_rated", [])


def test_someone_outside_the_errand_gets_404(create, act, world, client, auth):
    errand = create()
    for person in ("resident_b1", "secretary_b", "agent_b"):
        assert client.get(f"/api/v1/errands/{errand['id']}", headers=auth(person)).status_code == 404
    act("agent_b", errand, "fail", expect=404, reason="不是我的")


def test_bad_input_is_422_by_field(create, act, world, client, auth):
    assert create(type="no_such_errand", expect=422)["details"] == {"type": ["代办类型不存在或已停用"]}
    bad = create(expect=422, items="many", description=5)
    assert set(bad["details"]) == {"items", "description"}
    errand = create()
    bad = act(
        "secretary_a",
        errand,
        "accept",
        expect=422,
        agent_id=world.users["agent_b"].public_id,
        eligibility_note="ok 的",
    )
    assert bad["details"] == {"agent_id": ["不是本社区的代办员"]}
    bad = act("secretary_a", errand, "accept", expect=422, eligibility_note="")
    assert set(bad["details"]) == {"agent_id", "eligibility_note"}
    errand = act(
        "secretary_a",
        errand,
        "accept",
        agent_id=world.users["agent_a"].public_id,
        eligibility_note="资格初审通过",
    )
    assert act("agent_a", errand, "request_materials", expect=422, missing=["passport"])["details"] == {
        "missing": ["该事项没有这些材料：passport"]
    }
    missing = act("agent_a", errand, "collect", expect=422, materials=["application_form"], handover=HANDOVER)
    assert "缺少" in missing["details"]["materials"][0]
    unsigned = act(
        "agent_a",
        errand,
        "collect",
        expect=422,
        materials=SUBSISTENCE_MATERIALS,
        handover={**HANDOVER, "signed": False},
    )
    assert unsigned["details"] == {"handover": {"signed": ["交接单须双方签字"]}}
    money = act(
        "agent_a",
        errand,
        "collect",
        expect=422,
        materials=SUBSISTENCE_MATERIALS,
        handover=HANDOVER,
        cash_received_fen=100,
    )
    assert money["details"] == {"items": ["该代办事项不涉及钱物"]}
    errand = act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    errand = act("agent_a", errand, "lodge", office="幸福街道社会救助窗口", receipt_number="SJ-2026-001")
    assert act("agent_a", errand, "record_result", expect=422, outcome="approved", note="批准")[
        "details"
    ] == {"amount_fen": ["批准时须填写金额（分）"]}
    assert act("agent_a", errand, "record_result", expect=422, outcome="maybe", note="再看看", amount_fen=-1)[
        "details"
    ].keys() == {"outcome", "amount_fen"}
    assert client.get("/api/v1/errands/queue?cursor=!!!", headers=auth("agent_a")).status_code == 422
    assert create(appointment_id="ap_nothing", expect=422)["details"] == {"appointment_id": ["预约不存在"]}


def test_an_insurance_card_pin_is_refused_wherever_it_is_sent(create, act, world):
    refused = create(
        type="medicine_purchase",
        expect=422,
        sensitive={"insurance_card": "1234567", "insurance_card_pin": "123456"},
    )
    assert refused["details"] == {
        "sensitive.insurance_card_pin": ["代办员不收取医保卡密码或任何密码，请勿填写"]
    }
    refused = create(type="medicine_purchase", expect=422, pin="000000")
    assert list(refused["details"]) == ["pin"]
    errand = accepted(create, act, world, type="medicine_purchase")
    refused = act("agent_a", errand, "record_info", expect=422, insurance_card="1234567", 医保卡密码="1")
    assert list(refused["details"]) == ["医保卡密码"]
    refused = act(
        "agent_a",
        errand,
        "collect",
        expect=422,
        materials=["drug_list"],
        handover={**HANDOVER, "card_password": "1"},
    )
    assert list(refused["details"]) == ["handover.card_password"]
    assert row(errand).insurance_card is None


def test_money_must_balance_before_the_purchase_step_closes(create, act, world, upload):
    consent(world, "resident_a1", "entrustment", "health")  # the drug list is health information
    errand = accepted(create, act, world, type="medicine_purchase")
    items = [{"drug_name": "阿莫西林胶囊", "quantity": "2盒", "prescription_required": True}]
    no_rx = act(
        "agent_a",
        errand,
        "collect",
        expect=422,
        materials=["drug_list", "insurance_card", "cash"],
        handover=HANDOVER,
        items=items,
        cash_received_fen=10000,
    )
    assert no_rx["details"] == {"items.0.prescription_present": ["处方药须凭已有处方代购"]}
    items[0]["prescription_present"] = True
    no_paper = act(
        "agent_a",
        errand,
        "collect",
        expect=422,
        materials=["drug_list", "insurance_card", "cash"],
        handover=HANDOVER,
        items=items,
        cash_received_fen=10000,
    )
    assert no_paper["details"] == {"materials": ["清单中有处方药，须收取已有处方"]}
    no_cash = act(
        "agent_a",
        errand,
        "collect",
        expect=422,
        materials=["drug_list", "insurance_card", "cash", "prescription"],
        handover=HANDOVER,
        items=items,
    )
    assert no_cash["details"] == {"cash_received_fen": ["请登记收到的现金（分）"]}
    assert act(
        "agent_a",
        errand,
        "collect",
        expect=422,
        materials=["drug_list"],
        handover=HANDOVER,
        items=items,
        cash_received_fen=10.5,
    )["details"].keys() == {"cash_received_fen"}
    errand = act(
        "agent_a",
        errand,
        "collect",
        materials=["drug_list", "insurance_card", "cash", "prescription"],
        handover=HANDOVER,
        items=items,
        cash_received_fen=10000,
    )
    errand = act("agent_a", errand, "lodge", office="社区卫生服务中心药房", receipt_number="YF-01")
    photo = upload("agent_a")
    unbalanced = act(
        "agent_a",
        errand,
        "record_result",
        expect=422,
        outcome="approved",
        note="已购得",
        amount_spent_fen=6000,
        change_returned_fen=3000,
        receipt_photo_id=photo,
    )
    assert set(unbalanced["details"]) == {"cash_received_fen", "amount_spent_fen", "change_returned_fen"}
    assert "10000" in unbalanced["details"]["cash_received_fen"][0]
    missing = act(
        "agent_a",
        errand,
        "record_result",
        expect=422,
        outcome="approved",
        note="已购得",
        receipt_photo_id=photo,
    )
    assert set(missing["details"]) == {"amount_spent_fen", "change_returned_fen"}
    no_receipt = act(
        "agent_a",
        errand,
        "record_result",
        expect=422,
        outcome="approved",
        note="已购得",
        amount_spent_fen=6000,
        change_returned_fen=4000,
    )
    assert no_receipt["details"] == {"receipt_photo_id": ["请上传购药票据照片"]}
    done = act(
        "agent_a",
        errand,
        "record_result",
        outcome="approved",
        note="已购得",
        amount_spent_fen=6000,
        change_returned_fen=4000,
        receipt_photo_id=photo,
    )
    assert (
        done["state"],
        done["cash_received_fen"],
        done["amount_spent_fen"],
        done["change_returned_fen"],
    ) == ("result", 10000, 6000, 4000)
    assert len(done["receipts"]) == 1


PURCHASE = dict(
    materials=["drug_list", "insurance_card", "cash"],
    handover=HANDOVER,
    items=[{"drug_name": "硝苯地平缓释片", "quantity": "2盒"}],
    cash_received_fen=10000,
)


def test_a_purchase_that_fails_or_is_cancelled_holding_the_cash_hands_all_of_it_back(create, act, world):
    """Failing or cancelling a purchase whose cash the agent holds records the cash handed back: all of it."""
    consent(world, "resident_a1", "entrustment", "health")  # the drug list is health information
    errand = accepted(create, act, world, type="medicine_purchase")
    act("agent_a", errand, "collect", **PURCHASE)
    unrecorded = act("agent_a", errand, "fail", expect=422, reason="药店缺货")
    assert unrecorded["details"] == {"change_returned_fen": ["已收现金 10000 分，请登记退还的现金（分）"]}
    short = act("agent_a", errand, "fail", expect=422, reason="药店缺货", change_returned_fen=6000)
    assert short["details"] == {"change_returned_fen": ["收到 10000 分 ≠ 退还 6000 分"]}
    act("agent_a", errand, "lodge", office="幸福大药房", receipt_number="YF-1")
    assert list(act("resident_a1", errand, "cancel", expect=422, reason="不需要了")["details"]) == [
        "change_returned_fen"
    ]
    cancelled = act("resident_a1", errand, "cancel", reason="不需要了", change_returned_fen=10000)
    assert (cancelled["state"], cancelled["amount_spent_fen"], cancelled["change_returned_fen"]) == (
        "cancelled",
        0,
        10000,
    )
    failed = accepted(create, act, world, type="medicine_purchase")
    act("agent_a", failed, "collect", **PURCHASE)
    failed = act("agent_a", failed, "fail", reason="药店缺货", change_returned_fen=10000)
    assert (failed["state"], failed["cash_received_fen"], failed["change_returned_fen"]) == (
        "failed",
        10000,
        10000,
    )


def test_cash_handed_back_is_refused_where_the_agent_holds_none(create, act, world):
    """Only an errand holding a purchase's cash takes the cash handed back when it fails or is cancelled."""
    consent(world, "resident_a1", "entrustment", "health")  # the drug list is health information
    errand = accepted(create, act, world)
    assert act("agent_a", errand, "fail", expect=422, reason="无法办理", change_returned_fen=0)[
        "details"
    ] == {"change_returned_fen": ["该代办事项不涉及钱物"]}
    uncollected = accepted(create, act, world, type="medicine_purchase")
    refused = act(
        "resident_a1", uncollected, "cancel", expect=422, reason="家人已代买", change_returned_fen=0
    )
    assert refused["details"] == {"change_returned_fen": ["尚未收取现金，无需登记退还"]}
    # A result accounts for the cash already (received = spent + change): failing after it takes nothing more.
    settled = accepted(create, act, world, type="medicine_purchase")
    act("agent_a", settled, "collect", **PURCHASE)
    act("agent_a", settled, "lodge", office="幸福大药房", receipt_number="YF-2")
    act("agent_a", settled, "record_result", outcome="refused", note="药店缺货")
    again = act("agent_a", settled, "fail", expect=422, reason="无法送还", change_returned_fen=10000)
    assert again["details"] == {"change_returned_fen": ["钱款已在登记结果时结清"]}
    failed = act("agent_a", settled, "fail", reason="无法送还")
    assert (failed["state"], failed["amount_spent_fen"], failed["change_returned_fen"]) == (
        "failed",
        0,
        10000,
    )


def test_the_api_documents_the_cash_handed_back_on_fail_and_cancel(client):
    """The OpenAPI of fail and cancel lists change_returned_fen, in fen."""
    spec = client.get("/api/openapi.json").get_json()
    for action in ("fail", "cancel"):
        body = spec["paths"][f"/api/v1/errands/{{errand_id}}/{action}"]["post"]["requestBody"]
        name = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        field = spec["components"]["schemas"][name]["properties"]["change_returned_fen"]
        assert field["type"] == "integer" and "分" in field["description"]


def test_types_are_versioned_data_and_an_errand_keeps_its_version(create, act, world, client, auth):
    errand = accepted(create, act, world)
    definition = client.get(
        "/api/v1/errand-types/subsistence_allowance", headers=auth("street_admin")
    ).get_json()
    assert definition["current_version"] == 1 and [v["version"] for v in definition["versions"]] == [1]
    changed = dict(definition["definition"])
    changed["steps"] = [
        {**s, "limit": {"amount": 9, "unit": "working_days"}} if s["state"] == "accepted" else s
        for s in changed["steps"]
    ]
    assert (
        client.post(
            "/api/v1/errand-types/subsistence_allowance/versions",
            json={"definition": changed},
            headers=auth("secretary_a"),
        ).status_code
        == 403
    )
    edited = client.post(
        "/api/v1/errand-types/subsistence_allowance/versions",
        json={"definition": changed},
        headers=auth("street_admin"),
    )
    assert edited.status_code == 201 and edited.get_json()["current_version"] == 2
    # The errand in flight keeps version 1 (its step limit of 5 working days); a new one starts on version 2.
    old = client.get(f"/api/v1/errands/{errand['id']}", headers=auth("resident_a1")).get_json()
    assert old["type_version"] == 1
    assert next(s for s in old["steps"] if s["state"] == "accepted")["limit"]["amount"] == 5
    new = accepted(create, act, world)
    assert new["type_version"] == 2
    assert next(s for s in new["steps"] if s["state"] == "accepted")["limit"]["amount"] == 9
    clock_amounts = {
        e.public_id: c.amount
        for e in (row(errand), row(new))
        for c in __import__("backend.errands.service", fromlist=["x"]).step_clocks(e)
        if c.name == "accepted"
    }
    assert clock_amounts == {errand["id"]: 5, new["id"]: 9}


def test_street_admins_add_a_type_without_code_and_bad_definitions_are_422(client, auth, create):
    definition = ELDERLY_ALLOWANCE
    made = client.post(
        "/api/v1/errand-types",
        json={"code": "elderly_allowance", "definition": definition},
        headers=auth("street_admin"),
    )
    assert made.status_code == 201, made.get_json()
    assert "elderly_allowance" in [
        t["code"] for t in client.get("/api/v1/errand-types", headers=auth("resident_a1")).get_json()["items"]
    ]
    assert create(type="elderly_allowance")["state"] == "appointed"
    again = client.post(
        "/api/v1/errand-types",
        json={"code": "elderly_allowance", "definition": definition},
        headers=auth("street_admin"),
    )
    assert again.status_code == 422 and again.get_json()["details"] == {"code": ["该代办类型编码已存在"]}
    broken = {
        **definition,
        "steps": [
            {
                "state": "flying",
                "name": "",
                "owner": "robot",
                "limit": {"amount": 1.5, "unit": "working_days"},
            }
        ],
        "materials": [],
        "colour": "red",
    }
    bad = client.post(
        "/api/v1/errand-types", json={"code": "broken", "definition": broken}, headers=auth("street_admin")
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["details"]) == {
        "definition.materials",
        "definition.steps.0.state",
        "definition.steps.0.name",
        "definition.steps.0.owner",
        "definition.steps.0.limit",
        "definition.colour",
    }
    off = client.patch(
        "/api/v1/errand-types/elderly_allowance", json={"enabled": False}, headers=auth("street_admin")
    )
    assert off.status_code == 200
    create(type="elderly_allowance", expect=422)


# "items": a purchase's drug list is collected by the type's money flag, never named here.
@pytest.mark.parametrize("sensitive", [[{}], [["id_number"]], "id_number", [None], ["items"]])
def test_sensitive_fields_that_are_not_names_are_422(client, auth, sensitive):
    definition = {**ELDERLY_ALLOWANCE, "sensitive_fields": sensitive}
    bad = client.post(
        "/api/v1/errand-types", json={"code": "odd", "definition": definition}, headers=auth("street_admin")
    )
    assert bad.status_code == 422, bad.get_json()
    assert list(bad.get_json()["details"]) == ["definition.sensitive_fields"]


def test_a_type_whose_result_has_a_certificate_number_must_collect_it(client, auth):
    """A type whose result has a certificate number it does not list as sensitive is 422 on that field."""
    senior_card = {
        **ELDERLY_ALLOWANCE,
        "name": "老年优待证办理",
        "result": {"description": "发证或不予发证", "fields": ["certificate_number"]},
    }
    refused = client.post(
        "/api/v1/errand-types",
        json={"code": "senior_card", "definition": senior_card},
        headers=auth("street_admin"),
    )
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["details"] == {
        "definition.sensitive_fields": ["结果有证书编号，须把 certificate_number 列入敏感信息"]
    }
    made = client.post(
        "/api/v1/errand-types",
        json={
            "code": "senior_card",
            "definition": {**senior_card, "sensitive_fields": ["certificate_number"]},
        },
        headers=auth("street_admin"),
    )
    assert made.status_code == 201, made.get_json()
    # An edit that drops it is refused the same way.
    edited = client.post(
        "/api/v1/errand-types/senior_card/versions",
        json={"definition": {**senior_card, "sensitive_fields": ["id_number"]}},
        headers=auth("street_admin"),
    )
    assert edited.status_code == 422 and list(edited.get_json()["details"]) == ["definition.sensitive_fields"]


def test_an_agents_queue_runs_by_the_next_deadline_and_pages(create, act, world, client, auth):
    slow = accepted(create, act, world)  # 低保: collect within 5 working days
    fast = accepted(create, act, world, type="medicine_purchase")  # 代购: within 1 working day
    other = accepted(create, act, world, type="disability_certificate")
    act("secretary_a", other, "assign", agent_id=world.users["agent_a2"].public_id, note="小李请假")
    paused = accepted(create, act, world)
    act("agent_a", paused, "request_materials", missing=["income_property_proof"])
    page = client.get("/api/v1/errands/queue?limit=2", headers=auth("agent_a")).get_json()
    assert [e["id"] for e in page["items"]] == [fast["id"], slow["id"]]
    rest = client.get(
        f"/api/v1/errands/queue?limit=2&cursor={page['next_cursor']}", headers=auth("agent_a")
    ).get_json()
    # Waiting on the resident, its clock paused: after every running deadline.
    assert [e["id"] for e in rest["items"]] == [paused["id"]] and rest["next_cursor"] is None
    assert (rest["items"][0]["due_at"], rest["items"][0]["warn_at"]) == (None, None)
    # A running step shows its clock's deadline and when it turns yellow.
    running = next(c for c in service.step_clocks(row(fast)) if c.state == "running")
    shown = (page["items"][0]["due_at"], page["items"][0]["warn_at"])
    assert shown == tuple(clock.to_local(at).isoformat() for at in (running.due_at, running.warn_at))
    assert shown[1] < shown[0]
    theirs = client.get("/api/v1/errands/queue", headers=auth("agent_a2")).get_json()
    assert [e["id"] for e in theirs["items"]] == [other["id"]]
    # The first agent no longer acts on the reassigned errand.
    act("agent_a", other, "collect", expect=404, materials=[], handover=HANDOVER)
    board = client.get("/api/v1/errands/board", headers=auth("secretary_a")).get_json()
    assert len(board["items"]) == 4
    assert client.get("/api/v1/errands/board", headers=auth("secretary_b")).get_json()["items"] == []
    assert client.get("/api/v1/errands/queue", headers=auth("secretary_a")).status_code == 403


@pytest.mark.parametrize(
    "url, values",
    [
        ("/api/v1/errands/queue", ["2026-10-09T17:00:00", 1]),  # a deadline with no offset
        ("/api/v1/errands/queue", ["0001-01-01T00:00:00+08:00", 1]),  # before UTC's year 1
        ("/api/v1/errands/queue", ["2026-10-09T17:00:00+08:00", 10**30]),
        ("/api/v1/errands/queue", ["2026-10-09T17:00:00+08:00", True]),
        ("/api/v1/errands", [10**30]),
        ("/api/v1/errands", [2**31]),
        ("/api/v1/errands", [True]),
    ],
)
def test_a_forged_cursor_is_422_not_a_database_error(create, act, world, client, auth, url, values):
    import base64
    import json

    accepted(create, act, world)
    person = "agent_a" if url.endswith("queue") else "resident_a1"
    cursor = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
    response = client.get(url, query_string={"cursor": cursor}, headers=auth(person))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"] == {"cursor": ["无效的游标"]}


def test_an_appointment_becomes_one_errand_only(create, book, client, auth):
    appointment = book("resident_a1", "subsistence_allowance")
    first = create(appointment_id=appointment)
    again = create(appointment_id=appointment, expect=422)
    assert again["details"] == {"appointment_id": ["该预约已转为代办"]}
    mine = client.get("/api/v1/errands", headers=auth("resident_a1")).get_json()["items"]
    assert [e["id"] for e in mine] == [first["id"]]


def test_an_errand_booked_for_a_visit_is_timed_from_the_visit(create, book, client, auth):
    """受理 happens at the counter: the community's 2 working days run from the visit, not from the booking
    (a visit a week ahead ran out, and raised a 督办, before the resident came)."""
    import time_machine

    from tests.sla.calendar_data import local

    with time_machine.travel(local(2026, 12, 7, 10, 0), tick=False):  # a Monday
        first = _booking(client, auth, book("resident_a1", "subsistence_allowance"))
        later = next(o for o in _free_occurrences(client, first) if o["date"] == "2026-12-14")
        body = {"slot_id": later["slot_id"], "date": later["date"], "errand_type": "subsistence_allowance"}
        visit = client.post("/api/v1/appointments", json=body, headers=auth("resident_a1")).get_json()
        errand = create(appointment_id=visit["id"])
    appointed = next(c for c in service.step_clocks(row(errand)) if c.name == "appointed")
    assert (
        clock.to_local(appointed.started_at).isoformat() == visit["starts_at"] == "2026-12-14T09:00:00+08:00"
    )
    assert errand["due_at"] == "2026-12-15T17:30:00+08:00"  # two working days, the visit's day the first


@pytest.mark.parametrize("person", ["resident_a1", "secretary_a"])
def test_moving_the_visit_moves_the_communitys_time_to_receive_the_errand(create, book, client, auth, person):
    # The errand's 受理 step ran from the visit as first booked: moved a week later (by the resident, or by
    # the secretary for them), it ran out, and raised a 督办, days before the resident came.
    import time_machine

    from tests.sla.calendar_data import local

    with time_machine.travel(local(2026, 12, 7, 10, 0), tick=False):  # a Monday
        booking_id = book("resident_a1", "subsistence_allowance")
        errand = create(appointment_id=booking_id)
        first = _booking(client, auth, booking_id)
        assert first["starts_at"] == "2026-12-08T09:00:00+08:00"
        assert errand["due_at"] == "2026-12-09T17:30:00+08:00"
        later = next(o for o in _free_occurrences(client, first) if o["date"] == "2026-12-14")
        act_on_booking(
            client, auth, booking_id, "move", person=person, slot_id=later["slot_id"], date=later["date"]
        )
        seen = client.get(f"/api/v1/errands/{errand['id']}", headers=auth("resident_a1")).get_json()
    assert seen["due_at"] == "2026-12-15T17:30:00+08:00"  # two working days from the new visit
    clocks_now = [c for c in service.step_clocks(row(errand)) if c.name == "appointed"]
    assert [(clock.to_local(c.started_at).isoformat(), c.state) for c in clocks_now] == [
        ("2026-12-14T09:00:00+08:00", "running")
    ]
    # The cards wait for the new deadline: past the old one nothing is raised.
    from backend.db import db
    from backend.sla import clocks

    with time_machine.travel(local(2026, 12, 10, 9, 0), tick=False):
        assert not clocks.raise_overdue(clock_id=clocks_now[0].id)
        db.session.commit()
    assert clocks_now[0].overdue_at is None and not row(errand).is_overdue


def _booking(client, auth, booking_id: str, person: str = "resident_a1") -> dict:
    return client.get(f"/api/v1/appointments/{booking_id}", headers=auth(person)).get_json()


def _free_occurrences(client, booking: dict) -> list[dict]:
    found = client.get(f"/api/v1/service-points/{booking['service_point']['id']}/availability").get_json()[
        "items"
    ]
    return [o for o in found if o["available"]]


def test_an_errand_made_from_a_booking_leaves_it_booked_until_the_visit(
    create, book, act, world, client, auth
):
    # The mini-program books a slot, then makes the errand at once: the booking was marked attended then,
    # days before the visit, so the evening-before reminder never went and the resident could not move it.
    from backend.appointments import service as appointments
    from backend.db import db

    booking_id = book("resident_a1", "subsistence_allowance")
    errand = create(appointment_id=booking_id)
    assert errand["appointment_id"] == booking_id
    booking = _booking(client, auth, booking_id)
    assert (booking["state"], booking["state_label"], booking["attended_at"]) == ("booked", "已预约", None)
    assert booking["allowed_actions"] == ["move"]
    found = appointments.get_booking(booking_id)
    assert found.errand_id == row(errand).id
    assert appointments.send_reminder(booking_id=found.id, schedule_version=found.schedule_version)
    db.session.commit()
    # Moved, the errand keeps its booking (the same one, at its new time).
    later = next(o for o in _free_occurrences(client, booking) if o["starts_at"] != booking["starts_at"])
    moved = act_on_booking(client, auth, booking_id, "move", slot_id=later["slot_id"], date=later["date"])
    assert moved["starts_at"] == later["starts_at"]
    assert (
        client.get(f"/api/v1/errands/{errand['id']}", headers=auth("resident_a1")).get_json()[
            "appointment_id"
        ]
        == booking_id
    )
    # The visit: the secretary accepts the errand at the counter, and the booking was attended.
    accept(act, world, errand)
    booking = _booking(client, auth, booking_id)
    assert (booking["state"], booking["state_label"]) == ("attended", "已到场办理")
    assert booking["attended_at"] is not None and booking["allowed_actions"] == []


def act_on_booking(client, auth, booking_id: str, action: str, person="resident_a1", expect=200, **body):
    response = client.post(f"/api/v1/appointments/{booking_id}/{action}", json=body, headers=auth(person))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(("person", "action"), [("resident_a1", "cancel"), ("secretary_a", "fail")])
def test_an_errand_called_off_before_the_visit_gives_its_booking_back(
    create, book, act, client, auth, person, action
):
    booking_id = book("resident_a1", "subsistence_allowance")
    errand = create(appointment_id=booking_id)
    seats = {
        o["slot_id"] + o["date"]: o["remaining"]
        for o in _free_occurrences(client, _booking(client, auth, booking_id))
    }
    # Not the booking alone: the errand would wait for a visit nobody is coming to.
    for who in ("resident_a1", "secretary_a", "street_admin"):
        refused = act_on_booking(client, auth, booking_id, "cancel", person=who, expect=409)
        assert refused["code"] == "appointment_used", refused
    act(person, errand, action, reason="子女回来了，自己去办")
    booking = _booking(client, auth, booking_id)
    assert (booking["state"], booking["cancel_reason"]) == ("cancelled", "子女回来了，自己去办")
    after = {o["slot_id"] + o["date"]: o["remaining"] for o in _free_occurrences(client, booking)}
    key = booking["slot_id"] + booking["date"]
    assert after[key] == seats[key] + 1


def test_an_errand_is_not_given_to_a_disabled_agent(create, act, world):
    from backend.db import db

    world.users["agent_a2"].is_active = False
    db.session.commit()
    errand = create()
    refused = act(
        "secretary_a",
        errand,
        "accept",
        expect=422,
        agent_id=world.users["agent_a2"].public_id,
        eligibility_note="资格初审通过",
    )
    assert refused["details"] == {"agent_id": ["该代办员账号已停用"]}
    errand = accepted(create, act, world)
    refused = act("secretary_a", errand, "assign", expect=422, agent_id=world.users["agent_a2"].public_id)
    assert refused["details"] == {"agent_id": ["该代办员账号已停用"]}
    assert row(errand).agent_id == world.users["agent_a"].id


@pytest.mark.parametrize("person", ["newcomer", "agent_a", "grid_worker_a1"])
def test_someone_not_registered_in_a_grid_is_told_to_register_before_booking_an_errand(create, person):
    refused = create(person, expect=403)
    assert (refused["code"], refused["message"]) == ("residence_required", "请先登记居住的网格再预约代办")


def test_a_secretary_books_for_a_resident_of_their_community_only(create, world):
    errand = create(
        "secretary_a", resident_id=world.users["resident_a1"].public_id, type="disability_certificate"
    )
    assert errand["resident_id"] == world.users["resident_a1"].public_id
    assert errand["timeline"][0]["text"] == "您预约了代办事项：社区代为预约"
    assert (
        create("secretary_b", expect=403, resident_id=world.users["resident_a1"].public_id)["code"]
        == "out_of_scope"
    )
    assert create("secretary_a", expect=422, resident_id="u_nobody")["details"] == {
        "resident_id": ["居民不存在或未登记网格"]
    }


def test_the_timeline_reads_in_plain_words_for_the_resident(create, act, world, client, auth):
    errand = accepted(create, act, world)
    act("agent_a", errand, "request_materials", missing=["income_property_proof"], note="请到银行打印流水")
    seen = client.get(f"/api/v1/errands/{errand['id']}", headers=auth("resident_a1")).get_json()
    assert [e["text"] for e in seen["timeline"]] == [
        "您预约了代办事项",
        "社区已受理，资格和材料已初审，并安排了代办员：户籍在本社区，家庭人均收入低于标准",
        "还缺少一些材料，请您补齐（此期间不计办理时限）：缺少收入及财产证明；请到银行打印流水",
    ]
    assert [e["to_state_label"] for e in seen["timeline"]] == ["已预约", "已受理", "待补材料"]
    assert seen["allowed_actions"] == ["cancel", "record_info"]
    assert [m["code"] for m in seen["materials"] if m["missing"]] == ["income_property_proof"]


def test_an_idempotency_key_makes_one_errand(client, auth):
    headers = {**auth("resident_a1"), "Idempotency-Key": "errand-1"}
    body = {"type": "medicine_purchase", "description": "每月降压药"}
    first = client.post("/api/v1/errands", json=body, headers=headers)
    again = client.post("/api/v1/errands", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    other = client.post("/api/v1/errands", json={**body, "description": "别的"}, headers=headers)
    assert other.status_code == 422


@pytest.mark.parametrize("state", states.OPEN_STATES)
def test_cancel_and_fail_exist_in_every_open_step(state):
    assert states.can(state, "cancel", {states.OWNER}) and states.can(state, "fail", {states.AGENT})


def test_final_states_allow_nothing_but_a_rating():
    for state in states.FINAL_STATES:
        assert states.allowed_actions(state, set(states.STEP_OWNERS) | {states.OWNER, states.SECRETARY}) == (
            ["rate"] if state == "completed" else []
        )


def test_seeding_is_idempotent_and_keeps_the_streets_edits(client, auth):
    from backend.errands.service import get_type, seed_errand_types, shipped_errand_types

    assert {t["code"] for t in shipped_errand_types()} == {
        "subsistence_allowance",
        "medicine_purchase",
        "disability_certificate",
    }
    assert seed_errand_types() == []
    definition = client.get("/api/v1/errand-types/medicine_purchase", headers=auth("street_admin")).get_json()
    changed = {**definition["definition"], "name": "代购药品（新）"}
    client.post(
        "/api/v1/errand-types/medicine_purchase/versions",
        json={"definition": changed},
        headers=auth("street_admin"),
    )
    assert seed_errand_types() == []
    assert get_type("medicine_purchase").name == "代购药品（新）"


def test_the_hand_over_slip_and_the_type_versions_tell_beijing_time(create, act, world, client, auth):
    # Both read UTC (+00:00): a slip signed at 09:30 in the morning said 01:30.
    import time_machine

    from tests.sla.calendar_data import local

    with time_machine.travel(local(2026, 12, 8, 9, 30), tick=False):
        added = client.post(
            "/api/v1/errand-types",
            json={"code": "elderly_allowance", "definition": ELDERLY_ALLOWANCE},
            headers=auth("street_admin"),
        )
        errand = accepted(create, act, world)
        collected = act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["versions"][0]["created_at"] == "2026-12-08T09:30:00+08:00"
    assert collected["handover"]["at"] == "2026-12-08T09:30:00+08:00"
    seen = client.get("/api/v1/errand-types/elderly_allowance", headers=auth("resident_a1")).get_json()
    assert seen["versions"][0]["created_at"] == "2026-12-08T09:30:00+08:00"


def test_a_secretary_finds_an_errand_by_the_number_a_resident_reads_out(client, auth, create, act):
    kept = create()
    cancelled = act("resident_a1", create(), "cancel", reason="已自行办理")

    def board(person: str, **query) -> list[str]:
        response = client.get("/api/v1/errands/board", query_string=query, headers=auth(person))
        assert response.status_code == 200, response.get_json()
        return [e["number"] for e in response.get_json()["items"]]

    assert board("secretary_a") == [kept["number"]]  # a cancelled errand is off the board
    assert board("secretary_a", number=cancelled["number"]) == [cancelled["number"]]  # found in any state
    assert board("secretary_a", number=kept["number"].lower()) == [kept["number"]]
    assert board("street_admin", number=kept["number"]) == [kept["number"]]
    assert board("secretary_b", number=kept["number"]) == []
    assert board("secretary_a", number="DB" + "2" * 18) == []  # an id of ten digits: a number, none such
    for bad in ("DB123", "XX" + kept["number"][2:], kept["number"] + "x", "DB" + "1" * 19):
        response = client.get(
            "/api/v1/errands/board", query_string={"number": bad}, headers=auth("secretary_a")
        )
        assert response.status_code == 422, bad
        assert response.get_json()["details"] == {"number": ["代办编号为 DB 加 14 至 18 位数字"]}
