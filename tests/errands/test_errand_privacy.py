"""Sensitive data in errands: consent (单独同意 for the kind and the entrustment 授权委托) before storing,
encrypted at rest, masked in every response, the full value only to the assigned agent while the errand is
in their steps (up to the result, not after handing it back) and only through a logged reveal; public
notices carry name and amount only."""

import sqlalchemy as sa
from sqlalchemy import select

from backend.db import db
from backend.privacy import service as privacy
from backend.privacy.models import SensitiveAccessLog
from tests.errands.errand_helpers import HANDOVER, SUBSISTENCE_MATERIALS, consent, row
from tests.factories import rotating_keys

ID = "110105194901010128"


def accepted(create, act, world, **body):
    errand = create(**body)
    return act(
        "secretary_a",
        errand,
        "accept",
        agent_id=world.users["agent_a"].public_id,
        eligibility_note="资格初审通过",
    )


def test_nothing_sensitive_is_stored_without_the_entrustment_and_the_kinds_consent(create, act, world):
    refused = create(expect=403, sensitive={"id_number": ID})
    assert refused["code"] == "consent_required" and refused["details"]["consent"] == "entrustment"
    consent(world, "resident_a1", "entrustment")
    refused = create(expect=403, sensitive={"id_number": ID, "subsistence_status": "城市低保边缘户"})
    assert refused["details"]["consent"] == "id_number"
    consent(world, "resident_a1", "id_number")
    refused = create(expect=403, sensitive={"id_number": ID, "subsistence_status": "城市低保边缘户"})
    assert refused["details"]["consent"] == "subsistence"
    errand = create()
    assert act("agent_a", errand, "record_info", expect=404, id_number=ID)["code"] == "not_found"
    errand = accepted(create, act, world)
    assert (
        act("agent_a", errand, "record_info", expect=403, diagnosis="慢性肾病")["details"]["consent"]
        == "health"
    )
    assert row(errand).diagnosis is None
    consent(world, "resident_a1", "subsistence")
    stored = create(sensitive={"id_number": ID, "subsistence_status": "城市低保边缘户"})
    assert stored["id_number"] == "110105********0128"


def test_a_type_collects_only_what_it_needs(create, act, world):
    consent(world, "resident_a1", "entrustment", "insurance_card")
    refused = create(expect=422, sensitive={"insurance_card": "M12345678"})
    assert refused["details"] == {"insurance_card": ["该代办事项不收集此信息"]}


def test_values_are_encrypted_at_rest_and_masked_for_everyone(create, act, world, client, auth):
    consent(world, "resident_a1", "entrustment", "id_number", "disability", "health")
    errand = accepted(create, act, world, type="disability_certificate")
    act("resident_a1", errand, "record_info", id_number=ID, disability="肢体残疾三级", diagnosis="脑梗后遗症")
    raw = db.session.execute(
        sa.text("SELECT id_number, disability, diagnosis FROM errands WHERE public_id = :p"),
        {"p": errand["id"]},
    ).one()
    assert all(value.startswith("gAAAAA") for value in raw)
    assert ID not in str(raw) and "肢体" not in str(raw)
    for person in ("resident_a1", "agent_a", "secretary_a", "street_admin"):
        seen = client.get(f"/api/v1/errands/{errand['id']}", headers=auth(person)).get_json()
        assert seen["id_number"] == "110105********0128"
        assert seen["disability"] == "肢*****" and seen["diagnosis"] == "脑****"
        assert ID not in str(seen) and "肢体残疾" not in str(seen)
    timeline = client.get(f"/api/v1/errands/{errand['id']}", headers=auth("resident_a1")).get_json()[
        "timeline"
    ]
    assert timeline[-1]["text"].startswith("登记了办理所需的个人信息")


def test_only_the_assigned_agent_reveals_and_only_while_open_and_every_read_is_logged(
    create, act, world, client, auth
):
    consent(world, "resident_a1", "entrustment", "id_number", "subsistence")
    errand = accepted(create, act, world, sensitive={"id_number": ID, "subsistence_status": "农村低保"})

    def reveal(person: str, field: str = "id_number", reason: str = "到街道窗口填表"):
        return client.post(
            f"/api/v1/errands/{errand['id']}/reveal",
            json={"field": field, "reason": reason},
            headers=auth(person),
        )

    shown = reveal("agent_a")
    assert shown.status_code == 200 and shown.get_json() == {"field": "id_number", "value": ID}
    log = db.session.scalar(select(SensitiveAccessLog))
    assert (log.actor_id, log.subject_user_id, log.field, log.reason, log.actor_role) == (
        world.users["agent_a"].id,
        world.users["resident_a1"].id,
        "id_number",
        "到街道窗口填表",
        "proxy_agent",
    )
    assert log.resource == f"errand:{errand['id']}"
    # Another agent of the same community, or one elsewhere: not theirs (the errand is not even visible).
    assert reveal("agent_a2").status_code == 404
    assert reveal("agent_b").status_code == 404
    # The secretary and the resident see masks; the reveal endpoint is the agent's alone.
    assert reveal("secretary_a").status_code == 403
    assert reveal("resident_a1").status_code == 403
    assert reveal("agent_a", reason="").status_code == 422
    assert reveal("agent_a", field="password").status_code == 422
    # Reassigned: the first agent's standing is gone.
    act("secretary_a", errand, "assign", agent_id=world.users["agent_a2"].public_id)
    assert reveal("agent_a").status_code == 404
    assert reveal("agent_a2", field="subsistence_status").get_json()["value"] == "农村低保"
    act("resident_a1", errand, "cancel", reason="不办了")
    closed = reveal("agent_a2")
    assert closed.status_code == 403 and closed.get_json()["code"] == "reveal_forbidden"
    assert db.session.scalar(select(sa.func.count()).select_from(SensitiveAccessLog)) == 2
    mine = client.get("/api/v1/me/access-logs", headers=auth("resident_a1")).get_json()["items"]
    assert [entry["field"] for entry in mine] == ["subsistence_status", "id_number"]
    assert [(e["actor_role_label"], e["field_label"]) for e in mine] == [
        ("代办员", "低保状态"),
        ("代办员", "身份证号"),
    ]
    # The errand's street audits the reads; another street's admin sees none of them.
    audited = client.get("/api/v1/privacy/access-logs", headers=auth("street_admin")).get_json()["items"]
    assert [entry["resource"] for entry in audited] == [f"errand:{errand['id']}"] * 2
    elsewhere = client.get("/api/v1/privacy/access-logs", headers=auth("other_street_admin"))
    assert elsewhere.status_code == 200 and elsewhere.get_json()["items"] == []


def test_the_agent_reveals_up_to_the_result_and_not_once_it_is_handed_back(create, act, world, client, auth):
    """The assigned agent reveals only in their own steps: through the result, not after returning it."""
    consent(world, "resident_a1", "entrustment", "id_number", "subsistence")
    errand = accepted(create, act, world, sensitive={"id_number": ID, "subsistence_status": "城市低保"})

    def reveal():
        return client.post(
            f"/api/v1/errands/{errand['id']}/reveal",
            json={"field": "id_number", "reason": "核对结果通知书"},
            headers=auth("agent_a"),
        )

    act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    act("agent_a", errand, "lodge", office="幸福街道社会救助窗口", receipt_number="SJ-1")
    act("agent_a", errand, "record_result", outcome="refused", note="家庭收入超过标准")
    assert reveal().get_json() == {"field": "id_number", "value": ID}
    act("agent_a", errand, "return_to_resident", note="原件已送还")
    handed_back = reveal()
    assert handed_back.status_code == 403 and handed_back.get_json()["code"] == "reveal_forbidden"
    act("resident_a1", errand, "complete")
    assert reveal().status_code == 403
    assert db.session.scalar(select(sa.func.count()).select_from(SensitiveAccessLog)) == 1


def test_the_public_notice_carries_name_and_amount_only(create, act, world, client, auth):
    consent(world, "resident_a1", "entrustment", "id_number", "subsistence")
    errand = accepted(create, act, world, sensitive={"id_number": ID, "subsistence_status": "城市低保"})
    act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    act("agent_a", errand, "lodge", office="幸福街道社会救助窗口", receipt_number="SJ-1")
    act("agent_a", errand, "review")
    act("agent_a", errand, "record_result", outcome="approved", note="符合条件", amount_fen=76000)
    refused = accepted(create, act, world)
    act("agent_a", refused, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    act("agent_a", refused, "lodge", office="幸福街道社会救助窗口", receipt_number="SJ-2")
    act("agent_a", refused, "record_result", outcome="refused", note="家庭收入超过标准")
    notice = client.get("/api/v1/errands/public-notice", headers=auth("secretary_a"))
    assert notice.status_code == 200
    assert notice.get_json() == {"items": [{"name": "王秀英", "amount_fen": 76000}]}
    csv = client.get("/api/v1/errands/public-notice?format=csv", headers=auth("street_admin"))
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.get_data(as_text=True) == "name,amount_fen\r\n王秀英,76000\r\n"
    for person in ("resident_a1", "agent_a"):
        assert client.get("/api/v1/errands/public-notice", headers=auth(person)).status_code == 403
    assert client.get("/api/v1/errands/public-notice", headers=auth("secretary_b")).get_json() == {
        "items": []
    }
    other = client.get("/api/v1/errands/public-notice?type=medicine_purchase", headers=auth("secretary_a"))
    assert other.status_code == 422 and other.get_json()["details"] == {"type": ["该代办类型不公示"]}
    assert (
        client.get("/api/v1/errands/public-notice?format=xlsx", headers=auth("secretary_a")).status_code
        == 422
    )


def test_the_public_notice_csv_carries_no_formula(create, act, world, client, auth):
    # applicant_name is the resident's free text: written as it came, "=HYPERLINK(...)" ran as a formula
    # in the spreadsheet that opens the street's export (CSV injection). The JSON keeps the name as typed.
    name = '=HYPERLINK("http://evil.example","点我")'
    errand = accepted(create, act, world, applicant_name=name)
    act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    act("agent_a", errand, "lodge", office="幸福街道社会救助窗口", receipt_number="SJ-1")
    act("agent_a", errand, "record_result", outcome="approved", note="符合条件", amount_fen=76000)
    notice = client.get("/api/v1/errands/public-notice", headers=auth("secretary_a"))
    assert notice.get_json() == {"items": [{"name": name, "amount_fen": 76000}]}
    csv = client.get("/api/v1/errands/public-notice?format=csv", headers=auth("street_admin"))
    assert csv.status_code == 200
    assert csv.get_data(as_text=True) == (
        'name,amount_fen\r\n"\'=HYPERLINK(""http://evil.example"",""点我"")",76000\r\n'
    )


def test_every_text_cell_a_spreadsheet_would_run_is_written_as_text():
    import csv
    import io

    from backend.errands.views import notice_csv

    names = ["=1+1", "+86 138", "-2", "@SUM(A1)", "\tcmd", "\rcmd", "王秀英", "李-桂兰", ""]
    names.append("x\r=cmd|' /c calc'!A1")
    rows = [{"name": name, "amount_fen": -5 if i == 0 else i} for i, name in enumerate(names)]
    written = list(csv.reader(io.StringIO(notice_csv(rows), newline="")))[1:]
    assert written == [
        ["'=1+1", "-5"],  # a number is written as it is
        ["'+86 138", "1"],
        ["'-2", "2"],
        ["'@SUM(A1)", "3"],
        ["'\tcmd", "4"],
        ["'\rcmd", "5"],
        ["王秀英", "6"],
        ["李-桂兰", "7"],
        ["", "8"],
        ["x\r=cmd|' /c calc'!A1", "9"],  # one cell: a spreadsheet starts no row at its CR
    ]


def test_withdrawing_a_consent_erases_the_errand_values_stored_under_it(create, act, world, client, auth):
    consent(world, "resident_a1", "entrustment", "id_number", "disability", "health")
    errand = accepted(create, act, world, type="disability_certificate")
    act("resident_a1", errand, "record_info", id_number=ID, disability="肢体残疾三级", diagnosis="脑梗后遗症")
    headers = auth("resident_a1")

    def reveal(field: str):
        response = client.post(
            f"/api/v1/errands/{errand['id']}/reveal",
            json={"field": field, "reason": "到医院预约评定"},
            headers=auth("agent_a"),
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()["value"]

    assert client.delete("/api/v1/me/consents/health", headers=headers).status_code == 204
    assert row(errand).diagnosis is None and reveal("diagnosis") is None
    assert (row(errand).id_number, row(errand).disability) == (ID, "肢体残疾三级")
    # The entrustment covers every value the agent holds: withdrawn, none is kept.
    assert client.delete("/api/v1/me/consents/entrustment", headers=headers).status_code == 204
    kept = db.session.execute(
        sa.text("SELECT id_number, disability, diagnosis FROM errands WHERE public_id = :p"),
        {"p": errand["id"]},
    ).one()
    assert tuple(kept) == (None, None, None)
    shown = client.get(f"/api/v1/errands/{errand['id']}", headers=headers).get_json()
    assert (shown["id_number"], shown["disability"]) == (None, None)


# A purchase's drug list (代购药品): health information, like a diagnosis.

DRUGS = [
    {"drug_name": "硝苯地平控释片", "quantity": "3盒", "prescription_required": True,
     "prescription_present": True},
    {"drug_name": "二甲双胍片", "quantity": "2盒", "prescription_required": False,
     "prescription_present": False},
]  # fmt: skip


def raw_items(errand: dict) -> str | None:
    return db.session.execute(
        sa.text("SELECT items FROM errands WHERE public_id = :p"), {"p": errand["id"]}
    ).scalar()


def test_a_drug_list_is_encrypted_at_rest_and_no_list_is_nothing(create, world):
    consent(world, "resident_a1", "entrustment", "health")
    purchase = create(type="medicine_purchase", items=DRUGS)
    stored = raw_items(purchase)
    assert stored.startswith("gAAAAA") and "硝苯地平" not in stored and "二甲双胍" not in stored
    assert row(purchase).items == DRUGS
    assert raw_items(create(type="medicine_purchase")) is None


def test_key_rotation_re_encrypts_the_drug_lists(app, create, world):
    consent(world, "resident_a1", "entrustment", "health")
    purchase = create(type="medicine_purchase", items=DRUGS)
    before = raw_items(purchase)
    with rotating_keys(app) as drop_old_key:
        assert privacy.rotate_all_keys() == 1
        drop_old_key()
        assert raw_items(purchase) != before
        assert row(purchase).items == DRUGS


def test_a_drug_list_is_stored_only_with_the_entrustment_and_the_health_consent(create, act, world):
    """Booked with the errand or given at the collection, a drug list waits for both consents; a purchase
    with no list yet needs none."""
    refused = create(type="medicine_purchase", expect=403, items=DRUGS)
    assert refused["code"] == "consent_required" and refused["details"]["consent"] == "entrustment"
    consent(world, "resident_a1", "entrustment")
    refused = create(type="medicine_purchase", expect=403, items=DRUGS)
    assert refused["details"] == {"consent": "health", "label": "健康信息用于提供相应服务"}
    errand = accepted(create, act, world, type="medicine_purchase", items=[])
    assert raw_items(errand) is None
    collect = dict(
        materials=["drug_list", "insurance_card", "cash", "prescription"],
        handover=HANDOVER,
        items=DRUGS,
        cash_received_fen=20000,
    )
    refused = act("agent_a", errand, "collect", expect=403, **collect)
    assert refused["details"]["consent"] == "health"
    kept = row(errand)
    assert (kept.state, kept.items, kept.cash_received_fen) == ("accepted", None, None)
    consent(world, "resident_a1", "health")
    assert act("agent_a", errand, "collect", **collect)["state"] == "materials_collected"
    assert row(errand).items == DRUGS


def test_withdrawing_the_health_consent_or_the_entrustment_erases_the_drug_lists(
    create, act, world, client, auth
):
    consent(world, "resident_a1", "entrustment", "health", "insurance_card")
    first = create(type="medicine_purchase", items=DRUGS, sensitive={"insurance_card": "M1234567890"})
    headers = auth("resident_a1")
    assert client.delete("/api/v1/me/consents/health", headers=headers).status_code == 204
    assert raw_items(first) is None and row(first).insurance_card == "M1234567890"
    consent(world, "resident_a1", "health")
    second = accepted(create, act, world, type="medicine_purchase", items=DRUGS)
    assert client.delete("/api/v1/me/consents/entrustment", headers=headers).status_code == 204
    assert (raw_items(second), row(second).insurance_card, row(first).insurance_card) == (None, None, None)
    # Its list gone, the purchase is not collected until the list is given again (under consent again).
    refused = act(
        "agent_a",
        second,
        "collect",
        expect=422,
        materials=["drug_list", "insurance_card", "cash", "prescription"],
        handover=HANDOVER,
        cash_received_fen=20000,
    )
    assert refused["details"] == {"items": ["请列出代购的药品"]}


MASKED_DRUGS = [
    {"drug_name": "硝******", "quantity": "3盒", "prescription_required": True, "prescription_present": True},
    {"drug_name": "二****", "quantity": "2盒", "prescription_required": False, "prescription_present": False},
]


def test_a_drug_list_is_masked_for_everyone_in_every_response(create, act, world, client, auth):
    """The drug names are masked with the health mask, for the resident, the agent, the secretary and the
    street alike; quantities and the prescription flags stay (the secretary checks prescriptions)."""
    consent(world, "resident_a1", "entrustment", "health")
    booked = create(type="medicine_purchase", items=DRUGS)
    assert booked["items"] == MASKED_DRUGS
    errand = accepted(create, act, world, type="medicine_purchase", items=DRUGS)
    assert errand["items"] == MASKED_DRUGS
    for person in ("resident_a1", "agent_a", "secretary_a", "street_admin"):
        seen = client.get(f"/api/v1/errands/{errand['id']}", headers=auth(person)).get_json()
        assert seen["items"] == MASKED_DRUGS, person
    lists = [
        client.get("/api/v1/errands", headers=auth("resident_a1")),
        client.get("/api/v1/errands/queue", headers=auth("agent_a")),
        client.get("/api/v1/errands/board", headers=auth("secretary_a")),
        client.get("/api/v1/errands/board", headers=auth("street_admin")),
    ]
    for response in lists:
        assert response.status_code == 200 and response.get_json()["items"]
    for text in [booked, errand, *(r.get_json() for r in lists)]:
        assert "硝苯地平" not in str(text) and "二甲双胍" not in str(text)
    assert create(type="medicine_purchase")["items"] == []


def test_only_the_assigned_agent_reveals_the_whole_drug_list_and_every_read_is_logged(
    create, act, world, client, auth
):
    consent(world, "resident_a1", "entrustment", "health")
    errand = accepted(create, act, world, type="medicine_purchase", items=DRUGS)

    def reveal(person: str, reason: str = "到药房购药"):
        return client.post(
            f"/api/v1/errands/{errand['id']}/reveal",
            json={"field": "items", "reason": reason},
            headers=auth(person),
        )

    shown = reveal("agent_a")
    assert shown.status_code == 200 and shown.get_json() == {"field": "items", "value": DRUGS}
    log = db.session.scalar(select(SensitiveAccessLog))
    assert (log.actor_id, log.subject_user_id, log.field, log.reason, log.resource) == (
        world.users["agent_a"].id,
        world.users["resident_a1"].id,
        "items",
        "到药房购药",
        f"errand:{errand['id']}",
    )
    assert reveal("agent_a2").status_code == 404
    for person in ("secretary_a", "street_admin", "resident_a1"):
        assert reveal(person).status_code == 403, person
    assert reveal("agent_a", reason="").status_code == 422
    act(
        "agent_a",
        errand,
        "collect",
        materials=["drug_list", "insurance_card", "cash", "prescription"],
        handover=HANDOVER,
        cash_received_fen=20000,
    )
    act("agent_a", errand, "lodge", office="社区卫生服务中心药房", receipt_number="YF-1")
    act("agent_a", errand, "record_result", outcome="refused", note="药房缺货")
    assert reveal("agent_a", reason="核对缺货的药").get_json()["value"] == DRUGS
    act("agent_a", errand, "return_to_resident", note="现金已退还")
    handed_back = reveal("agent_a")
    assert handed_back.status_code == 403 and handed_back.get_json()["code"] == "reveal_forbidden"
    assert db.session.scalar(select(sa.func.count()).select_from(SensitiveAccessLog)) == 2


def test_the_api_documents_the_drug_list_as_masked_and_revealed_in_full(client):
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    items = schemas["Errand"]["properties"]["items"]
    assert items["items"] == {"$ref": "#/components/schemas/ErrandItemMasked"}
    assert "脱敏" in items["description"] and "reveal" in items["description"]
    assert "脱敏" in schemas["ErrandItemMasked"]["properties"]["drug_name"]["description"]
    assert "items" in schemas["ErrandReveal"]["properties"]["field"]["enum"]
    assert {"type": "array", "items": {"$ref": "#/components/schemas/ErrandItem"}} in schemas[
        "ErrandRevealed"
    ]["properties"]["value"]["oneOf"]
