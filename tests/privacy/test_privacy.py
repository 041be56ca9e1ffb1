"""Sensitive data: encrypted at rest, blind-indexed, masked in responses, revealed with a logged reason."""

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from backend.auth.models import User
from backend.community.models import Community
from backend.db import db
from backend.privacy import crypto, masking
from backend.privacy import service as privacy
from backend.privacy.models import SensitiveAccessLog
from tests.factories import rotating_keys, send_at_once


@pytest.mark.parametrize(
    ("value", "masked"),
    [("13800138000", "138****8000"), ("110105199001010123", "110105********0123"), ("123", "***")],
)
def test_masks(value, masked):
    fn = masking.mask_phone if len(value) == 11 or len(value) == 3 else masking.mask_id_number
    assert fn(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("3301234567", "330****567"),  # a ten-character card under the ID number's six and four: all shown
        ("M1234567890", "M12****7890"),
        ("1234567", "1****67"),
        ("12345", "*****"),
    ],
)
def test_short_numbers_keep_a_third_and_at_least_four_characters_hidden(value, masked):
    assert masking.mask_id_number(value) == masked
    assert masking.mask_phone(value).count("*") >= 4


def test_mask_name():
    assert masking.mask_name("张伟") == "张*"
    assert masking.mask_name("王秀英") == "王*英"


def _give_phone(user: User, phone: str) -> None:
    privacy.grant_consent(user_id=user.id, kind="phone", text_version="2026-11")
    privacy.store(user, "phone", phone, subject_user_id=user.id)
    db.session.commit()


def test_stored_value_is_ciphertext_and_lookup_uses_the_blind_index(world):
    resident = world.users["resident_a1"]
    _give_phone(resident, "138 0013 8000")
    raw = db.session.execute(
        sa.text("SELECT phone, phone_hmac FROM users WHERE id = :id"), {"id": resident.id}
    ).one()
    assert "13800138000" not in raw.phone
    assert crypto.decrypt(raw.phone) == "13800138000"
    found = db.session.scalar(
        sa.select(User).where(User.phone_hmac == privacy.lookup_hash("phone", "13800138000"))
    )
    assert found.id == resident.id


def test_store_without_consent_is_refused_and_nothing_is_written(world):
    resident = world.users["resident_a1"]
    with pytest.raises(privacy.ConsentRequired):
        privacy.store(resident, "id_number", "110105199001010125", subject_user_id=resident.id)
    db.session.rollback()
    assert db.session.get(User, resident.id).id_number is None


def test_profile_id_number_needs_consent(client, auth, world):
    headers = auth("resident_a1")
    refused = client.patch("/api/v1/me", json={"id_number": "110105199001010125"}, headers=headers)
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "consent_required"
    client.post("/api/v1/me/consents", json={"kind": "id_number", "text_version": "2026-11"}, headers=headers)
    ok = client.patch(
        "/api/v1/me", json={"id_number": "110105199001010125", "real_name": "王秀英"}, headers=headers
    )
    assert ok.status_code == 200
    assert ok.get_json()["id_number"] == "110105********0125"


@pytest.mark.parametrize(
    ("id_number", "problem"),
    [
        ("12345", "身份证号应为18位，最后一位可以是X"),
        ("110105199013450125", "身份证号中的出生日期不存在，请核对"),  # born on the 45th of the 13th month
        ("110105000000000123", "身份证号中的出生日期不存在，请核对"),
        ("110105203001010128", "身份证号中的出生日期不存在，请核对"),  # born in 2030
        ("110105199001010123", "身份证号校验位不符，请核对"),  # one digit mistyped: the check is 5
    ],
)
def test_an_id_number_that_cannot_be_one_is_422(client, auth, id_number, problem):
    headers = auth("resident_a1")
    client.post("/api/v1/me/consents", json={"kind": "id_number", "text_version": "2026-11"}, headers=headers)
    response = client.patch("/api/v1/me", json={"id_number": id_number}, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["details"] == {"id_number": [problem]}


def test_an_id_number_ending_in_a_small_x_is_kept_with_a_capital(client, auth, world):
    headers = auth("resident_a1")
    client.post("/api/v1/me/consents", json={"kind": "id_number", "text_version": "2026-11"}, headers=headers)
    response = client.patch("/api/v1/me", json={"id_number": "11010519491231002x"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    assert db.session.get(User, world.users["resident_a1"].id).id_number == "11010519491231002X"


def test_responses_mask_by_default(client, auth, world):
    _give_phone(world.users["resident_a1"], "13800138000")
    me = client.get("/api/v1/me", headers=auth("resident_a1")).get_json()
    assert me["phone"] == "138****8000"
    residents = client.get(
        f"/api/v1/communities/{world.community_a.public_id}/residents", headers=auth("secretary_a")
    ).get_json()
    assert [r["phone"] for r in residents["items"]] == ["138****8000"]
    assert "13800138000" not in str(residents)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("resident_a1", 200),
        ("secretary_a", 200),
        ("street_admin", 200),
        ("secretary_b", 403),
        ("other_street_admin", 403),
        ("grid_worker_a1", 403),
        ("org_admin", 403),
        ("resident_b1", 403),
    ],
)
def test_reveal_is_checked_and_logged(client, auth, world, who, status):
    subject = world.users["resident_a1"]
    _give_phone(subject, "13800138000")
    response = client.post(
        f"/api/v1/users/{subject.public_id}/reveal",
        json={"field": "phone", "reason": "联系居民核实诉求"},
        headers=auth(who),
    )
    assert response.status_code == status
    logs = db.session.scalars(sa.select(SensitiveAccessLog)).all()
    if status == 200:
        assert response.get_json() == {"field": "phone", "value": "13800138000"}
        assert [(log.actor_id, log.field, log.reason) for log in logs] == [
            (world.users[who].id, "phone", "联系居民核实诉求")
        ]
    else:
        assert logs == []


def test_reveal_needs_a_reason(client, auth, world):
    subject = world.users["resident_a1"]
    response = client.post(
        f"/api/v1/users/{subject.public_id}/reveal", json={"field": "phone"}, headers=auth("street_admin")
    )
    assert response.status_code == 422
    assert "reason" in response.get_json()["details"]


def test_resident_sees_who_read_their_data(client, auth, world):
    subject = world.users["resident_a1"]
    _give_phone(subject, "13800138000")
    client.post(
        f"/api/v1/users/{subject.public_id}/reveal",
        json={"field": "phone", "reason": "上门服务前联系"},
        headers=auth("secretary_a"),
    )
    logs = client.get("/api/v1/me/access-logs", headers=auth("resident_a1")).get_json()["items"]
    assert [(entry["actor_id"], entry["actor_role"], entry["reason"]) for entry in logs] == [
        (world.users["secretary_a"].public_id, "secretary", "上门服务前联系")
    ]
    # What the resident reads: who (社区书记) read what (手机号).
    assert [(entry["actor_role_label"], entry["field_label"]) for entry in logs] == [("社区书记", "手机号")]
    admin_view = client.get(
        "/api/v1/privacy/access-logs",
        query_string={"user_id": subject.public_id},
        headers=auth("street_admin"),
    )
    assert len(admin_view.get_json()["items"]) == 1


def test_a_street_admin_audits_the_reads_of_their_own_street_only(client, auth, world):
    subject = world.users["resident_a1"]
    _give_phone(subject, "13800138000")
    for who in ("secretary_a", "resident_a1"):
        read = client.post(
            f"/api/v1/users/{subject.public_id}/reveal",
            json={"field": "phone", "reason": "上门服务前联系"},
            headers=auth(who),
        )
        assert read.status_code == 200

    def audit(admin: str, **query) -> list:
        response = client.get("/api/v1/privacy/access-logs", query_string=query, headers=auth(admin))
        assert response.status_code == 200
        return [(entry["actor_role"], entry["subject_user_id"]) for entry in response.get_json()["items"]]

    assert audit("street_admin") == [("self", subject.public_id), ("secretary", subject.public_id)]
    audited = client.get("/api/v1/privacy/access-logs", headers=auth("street_admin")).get_json()["items"]
    assert [entry["actor_role_label"] for entry in audited] == ["本人", "社区书记"]
    assert audit("other_street_admin") == []
    assert audit("other_street_admin", user_id=subject.public_id) == []
    streets = db.session.scalars(sa.select(SensitiveAccessLog.street_id)).all()
    assert streets == [world.street.id, world.street.id]


def test_withdrawing_consent_erases_the_value(client, auth, world):
    _give_phone(world.users["resident_a1"], "13800138000")
    headers = auth("resident_a1")
    assert client.delete("/api/v1/me/consents/phone", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).get_json()["phone"] is None
    consents = client.get("/api/v1/me/consents", headers=headers).get_json()["items"]
    assert consents[0]["withdrawn_at"] is not None
    assert consents[0]["granted_at"].endswith("+08:00")


def test_a_person_holds_one_active_consent_of_a_kind(world):
    from backend.privacy.models import Consent

    resident = world.users["resident_a1"]
    db.session.add(Consent(user_id=resident.id, kind="phone", text_version="2026-11"))
    db.session.commit()
    # The database itself refuses a second one, so no race between two grants can leave two.
    db.session.add(Consent(user_id=resident.id, kind="phone", text_version="2026-11"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()
    # Withdrawn ones are history: as many as there were, beside the one in force.
    privacy.withdraw_consent(user=resident, kind="phone")
    privacy.grant_consent(user_id=resident.id, kind="phone", text_version="2026-11")
    privacy.grant_consent(user_id=resident.id, kind="id_number", text_version="2026-11")
    kinds = [(c.kind, c.withdrawn_at is None) for c in privacy.list_consents(user_id=resident.id)]
    assert kinds == [("phone", False), ("phone", True), ("id_number", True)]


def test_two_taps_on_agree_at_once_record_one_consent(server, auth, world):
    headers = auth("resident_a1")
    grant = {"kind": "phone", "text_version": "2026-11"}
    answers = send_at_once([(server + "/api/v1/me/consents", grant, headers)] * 4)
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
    assert len({a.json()["granted_at"] for a in answers}) == 1
    consents = privacy.list_consents(user_id=world.users["resident_a1"].id)
    assert [c.withdrawn_at for c in consents] == [None]


def test_a_nul_character_is_422_by_field_wherever_it_is_sent(client, auth, world):
    # PostgreSQL's text cannot hold NUL: refused where it arrives, named by field, not failed in the database.
    headers = auth("resident_a1")
    grant = {"kind": "phone", "text_version": "v\x00"}
    body = client.post("/api/v1/me/consents", json=grant, headers=headers)
    assert body.status_code == 422, body.get_json()
    assert body.get_json()["details"] == {"text_version": ["不能包含空字符"]}
    subject = world.users["resident_a1"].public_id
    nested = client.patch("/api/v1/me", json={"real_name": "王\x00"}, headers=headers)
    assert nested.get_json()["details"] == {"real_name": ["不能包含空字符"]}
    reveal = client.post(
        f"/api/v1/users/{subject}/reveal", json={"field": "phone", "reason": "核对\x00"}, headers=headers
    )
    assert reveal.status_code == 422 and reveal.get_json()["details"] == {"reason": ["不能包含空字符"]}
    query = client.get("/api/v1/privacy/access-logs?user_id=u_%00", headers=auth("street_admin"))
    assert query.status_code == 422 and query.get_json()["details"] == {"user_id": ["不能包含空字符"]}
    assert privacy.active_consent(user_id=world.users["resident_a1"].id, kind="phone") is None


def test_a_lone_surrogate_is_422_by_field_and_a_pair_is_a_character(client, auth, world):
    """JSON's \\ud800 without its pair decodes to text nothing can encode (the database, a hash): refused
    by field where it arrives, not failed later as a 500; an escaped pair is an ordinary character."""
    headers = {**auth("resident_a1"), "Content-Type": "application/json"}
    login = client.post("/api/v1/auth/login", data=b'{"code": "\\ud800"}', content_type="application/json")
    assert login.status_code == 422 and login.get_json()["details"] == {
        "code": ["含有无效字符（不成对的代理项）"]
    }
    lone = client.patch("/api/v1/me", data=b'{"real_name": "\\ud83d"}', headers=headers)
    assert lone.status_code == 422 and "real_name" in lone.get_json()["details"]
    pair = client.patch("/api/v1/me", data=b'{"real_name": "\\u738b\\ud83d\\ude00"}', headers=headers)
    assert pair.status_code == 200, pair.get_json()


def test_unknown_consent_kind_is_422(client, auth):
    response = client.post(
        "/api/v1/me/consents", json={"kind": "zodiac", "text_version": "1"}, headers=auth("resident_a1")
    )
    assert response.status_code == 422


def test_key_rotation_re_encrypts_under_the_new_key(app, world):
    _give_phone(world.users["resident_a1"], "13800138000")
    with rotating_keys(app) as drop_old_key:
        assert privacy.rotate_all_keys() == 1
        drop_old_key()
        db.session.expire_all()
        assert db.session.get(User, world.users["resident_a1"].id).phone == "13800138000"


def test_a_value_saved_while_keys_rotate_is_not_put_back(app, world, monkeypatch):
    """`sandan rotate-keys` runs beside the live service: a phone number bound between its read and its
    write stays the new one (the real rotate, with the other request's write slipped in before it)."""
    resident = world.users["resident_a1"]
    _give_phone(resident, "13800138000")
    privacy.store(resident, "phone", "13800138000", subject_user_id=resident.id)
    db.session.commit()
    rotate = crypto.rotate
    meanwhile = []

    def rotate_as_a_new_phone_is_bound(token):
        if not meanwhile:
            with db.engine.begin() as other:
                other.execute(
                    sa.text("UPDATE users SET phone = :phone WHERE id = :id"),
                    {"phone": crypto.encrypt("13900139000"), "id": resident.id},
                )
            meanwhile.append(True)
        return rotate(token)

    with rotating_keys(app):
        monkeypatch.setattr(crypto, "rotate", rotate_as_a_new_phone_is_bound)
        assert privacy.rotate_all_keys() == 0
        db.session.expire_all()
        assert db.session.get(User, resident.id).phone == "13900139000"


def test_rotating_without_the_old_key_names_the_value_and_rewrites_nothing(app, world):
    """An operator who lists only the new key (SANDAN_ENCRYPTION_KEYS="new") is told which stored value no
    key opens, and nothing is rewritten: the old key, put back, still reads everything."""
    _give_phone(world.users["resident_a1"], "13800138000")
    _give_phone(world.users["resident_b1"], "13900139000")
    ids = (world.users["resident_a1"].id, world.users["resident_b1"].id)
    with rotating_keys(app) as drop_old_key:
        drop_old_key()
        with pytest.raises(crypto.KeyConfigError) as caught:
            privacy.rotate_all_keys()
        assert (caught.value.table, caught.value.column) == ("users", "phone")
        assert caught.value.row_id in ids
        assert str(caught.value) == (
            f"表 users 字段 phone 中 id 为 {caught.value.row_id} 的行，其加密值无法用已配置的任何密钥解密"
        )
    db.session.expire_all()
    assert db.session.get(User, world.users["resident_a1"].id).phone == "13800138000"
    assert db.session.get(User, world.users["resident_b1"].id).phone == "13900139000"


def test_a_value_under_an_unknown_key_fails_loudly(app):
    token = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with pytest.raises(crypto.KeyConfigError):
        crypto.decrypt(token)


def test_key_rotation_covers_every_encrypted_column():
    columns = set(privacy.encrypted_columns())
    assert {
        ("users", "phone"),
        ("users", "id_number"),
        ("orders", "contact_phone"),
        ("orders", "address"),
    } <= columns
    assert {
        ("errands", "id_number"),
        ("errands", "diagnosis"),
        ("errands", "certificate_number"),
        ("errands", "items"),
    } <= columns


def test_an_admin_cannot_move_a_resident_into_their_street_to_read_their_data(client, auth, world):
    """Residence decides whose staff may read a person's sensitive data, so only the person registers it:
    another street's admin giving them a residence would otherwise read them in full."""
    subject = world.users["resident_a1"]
    privacy.grant_consent(user_id=subject.id, kind="id_number", text_version="2026-11")
    privacy.store(subject, "id_number", "110105199001010125", subject_user_id=subject.id)
    db.session.commit()
    community_t = db.session.scalar(sa.select(Community).where(Community.street_id == world.other_street.id))
    granted = client.post(
        "/api/v1/memberships",
        json={
            "user_id": subject.public_id,
            "role": "resident",
            "scope_type": "community",
            "scope_id": community_t.public_id,
        },
        headers=auth("other_street_admin"),
    )
    assert granted.status_code == 422 and "role" in granted.get_json()["details"]
    revealed = client.post(
        f"/api/v1/users/{subject.public_id}/reveal",
        json={"field": "id_number", "reason": "核实身份"},
        headers=auth("other_street_admin"),
    )
    assert revealed.status_code == 403
    assert db.session.scalars(sa.select(SensitiveAccessLog)).all() == []
