"""WeChat login through wechatpy against the fake WeChat server, tokens, refresh, logout, phone binding."""

import secrets
from datetime import timedelta

import jwt
import pytest
import time_machine
from sqlalchemy import select

from backend import clock
from backend.auth import tokens
from backend.auth.models import AuthSession, User
from backend.db import db
from tests.factories import send_at_once


def _login(client, code, **extra):
    return client.post("/api/v1/auth/login", json={"code": code, **extra})


def test_first_login_creates_the_user_and_returns_tokens(client, fake_wechat):
    code, openid = fake_wechat.state.issue_login_code()
    response = _login(client, code, nickname="王秀英")
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 7200
    assert body["user"]["nickname"] == "王秀英"
    assert body["user"]["roles"] == []
    user = db.session.scalar(select(User).where(User.openid == openid))
    assert user.public_id == body["user"]["id"]
    me = client.get("/api/v1/me", headers={"Authorization": "Bearer " + body["access_token"]})
    assert me.status_code == 200
    assert me.get_json()["id"] == user.public_id


def test_second_login_finds_the_same_user_and_records_unionid(client, fake_wechat):
    first, openid = fake_wechat.state.issue_login_code()
    user_id = _login(client, first).get_json()["user"]["id"]
    second, _ = fake_wechat.state.issue_login_code(openid=openid, unionid="union-1")
    assert _login(client, second).get_json()["user"]["id"] == user_id
    assert db.session.scalar(select(User.unionid).where(User.openid == openid)) == "union-1"
    assert db.session.query(User).count() == 1


def test_access_token_is_fetched_once_and_cached_in_redis(client, fake_wechat, app):
    for _ in range(3):
        code, _ = fake_wechat.state.issue_login_code()
        assert _login(client, code).status_code == 200
    assert fake_wechat.state.calls("token") == 1
    from backend.extensions import get_redis

    assert get_redis().get(f"sandan:wechat:{app.config['WECHAT_APPID']}_access_token") is not None


def test_invalid_code_40029(client):
    response = _login(client, "never-issued")
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "wechat_code_invalid"
    assert body["details"] == {"errcode": 40029}


def test_code_used_twice_40163(client, fake_wechat):
    code, _ = fake_wechat.state.issue_login_code()
    assert _login(client, code).status_code == 200
    response = _login(client, code)
    assert response.status_code == 400
    assert response.get_json()["code"] == "wechat_code_used"


def test_expired_code_is_invalid(client, fake_wechat):
    code, _ = fake_wechat.state.issue_login_code()
    with time_machine.travel(clock.now() + timedelta(minutes=6)):
        response = _login(client, code)
    assert response.status_code == 400
    assert response.get_json()["code"] == "wechat_code_invalid"


def test_frequency_limit_45011_is_429(client, fake_wechat):
    code, _ = fake_wechat.state.issue_login_code()
    fake_wechat.state.inject_fault("jscode2session", errcode=45011)
    response = _login(client, code)
    assert response.status_code == 429
    assert response.get_json()["code"] == "wechat_rate_limited"


def test_stale_access_token_40001_is_refreshed_and_retried(client, fake_wechat):
    code, _ = fake_wechat.state.issue_login_code()
    headers = {"Authorization": "Bearer " + _login(client, code).get_json()["access_token"]}
    client.post("/api/v1/me/consents", json={"kind": "phone", "text_version": "2026-11"}, headers=headers)
    fake_wechat.state.expire_tokens()
    phone_code = fake_wechat.state.issue_phone_code("13900139000")
    assert client.post("/api/v1/me/phone", json={"code": phone_code}, headers=headers).status_code == 200
    assert fake_wechat.state.calls("token") == 2


def test_access_token_refused_by_wechat_is_503(client, fake_wechat):
    fake_wechat.state.inject_fault("token", errcode=40001)
    code, _ = fake_wechat.state.issue_login_code()
    response = _login(client, code)
    assert response.status_code == 503
    assert response.get_json()["code"] == "wechat_credential_invalid"


def test_wechat_server_error_is_503(client, fake_wechat):
    fake_wechat.state.inject_fault("jscode2session", http_status=502)
    code, _ = fake_wechat.state.issue_login_code()
    response = _login(client, code)
    assert response.status_code == 503
    assert response.get_json()["code"] == "wechat_unavailable"


def test_an_answer_that_is_not_json_is_503_and_the_code_still_works(client, fake_wechat, signed_in):
    """A page with status 200 where WeChat's JSON should be (a proxy's or a captive portal's): wechatpy hands
    back the raw response, which login and phone binding read as a dict, a 500. It is WeChat unavailable
    (503), and the code, which WeChat never saw, signs in on the retry."""
    fake_wechat.state.inject_fault("jscode2session", http_status=200)
    code, _ = fake_wechat.state.issue_login_code()
    response = _login(client, code)
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["code"] == "wechat_unavailable"
    assert _login(client, code).status_code == 200

    headers = {"Authorization": "Bearer " + signed_in["access_token"]}
    client.post("/api/v1/me/consents", json={"kind": "phone", "text_version": "2026-11"}, headers=headers)
    fake_wechat.state.inject_fault("getuserphonenumber", http_status=200)
    phone_code = fake_wechat.state.issue_phone_code("13800138000")
    bound = client.post("/api/v1/me/phone", json={"code": phone_code}, headers=headers)
    assert bound.status_code == 503, bound.get_json()
    assert bound.get_json()["code"] == "wechat_unavailable"
    assert client.post("/api/v1/me/phone", json={"code": phone_code}, headers=headers).status_code == 200


def test_wechat_unreachable_is_503(app, client, fake_wechat):
    code, _ = fake_wechat.state.issue_login_code()
    original = app.config["WECHAT_API_BASE_URL"]
    app.config["WECHAT_API_BASE_URL"] = "http://127.0.0.1:1/"
    try:
        response = _login(client, code)
    finally:
        app.config["WECHAT_API_BASE_URL"] = original
    assert response.status_code == 503
    assert response.get_json()["code"] == "wechat_unreachable"


def test_login_still_works_with_redis_down(app, client, fake_wechat):
    code, _ = fake_wechat.state.issue_login_code()
    original = app.config["REDIS_URL"]
    app.extensions.pop("sandan_redis", None)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        response = _login(client, code)
    finally:
        app.config["REDIS_URL"] = original
        app.extensions.pop("sandan_redis", None)
    assert response.status_code == 200


def test_with_redis_down_the_access_token_is_fetched_once_per_process(app, client, fake_wechat):
    # WeChat issues 2,000 tokens a day: a token fetched for every login while Redis is down would spend
    # them, and with them every WeChat call until midnight.
    original = app.config["REDIS_URL"]
    app.extensions.pop("sandan_redis", None)
    app.extensions.pop("sandan_wechat_token_fallback", None)  # a process starting with Redis down
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        for _ in range(3):
            code, _ = fake_wechat.state.issue_login_code()
            assert _login(client, code).status_code == 200
    finally:
        app.config["REDIS_URL"] = original
        app.extensions.pop("sandan_redis", None)
    assert fake_wechat.state.calls("token") == 1


@pytest.fixture
def signed_in(client, fake_wechat):
    code, _ = fake_wechat.state.issue_login_code()
    return _login(client, code).get_json()


def _me(client, token):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_missing_token_is_401(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_missing"


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer not.a.jwt", "token"])
def test_malformed_authorization_is_401(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_invalid"


def test_access_token_expires(client, signed_in):
    # Used once first: the process remembers a verified token, and must still see it expire.
    assert _me(client, signed_in["access_token"]).status_code == 200
    with time_machine.travel(clock.now() + timedelta(seconds=7201)):
        response = _me(client, signed_in["access_token"])
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_expired"


def test_tampered_token_is_rejected(client, signed_in):
    header, payload, signature = signed_in["access_token"].split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert _me(client, f"{header}.{payload}.{flipped}").status_code == 401


def test_token_signed_with_another_key_is_rejected(client, signed_in):
    claims = jwt.decode(signed_in["access_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "not-our-key-but-just-as-long-as-ours-is", algorithm="HS256")
    response = _me(client, forged)
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_invalid"


def test_refresh_rotates_the_pair(client, signed_in):
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert response.status_code == 200
    fresh = response.get_json()
    assert fresh["refresh_token"] != signed_in["refresh_token"]
    assert _me(client, fresh["access_token"]).status_code == 200


def test_refresh_works_after_access_expiry_but_not_after_refresh_expiry(client, signed_in):
    with time_machine.travel(clock.now() + timedelta(hours=3)):
        ok = client.post("/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert ok.status_code == 200
    with time_machine.travel(clock.now() + timedelta(days=31)):
        late = client.post("/api/v1/auth/refresh", json={"refresh_token": ok.get_json()["refresh_token"]})
    assert late.status_code == 401
    assert late.get_json()["code"] == "refresh_token_expired"


def test_replayed_refresh_token_revokes_the_session(client, signed_in):
    fresh = client.post("/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}).get_json()
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert replay.status_code == 401
    # Someone held a copy: the legitimate holder's tokens die too, and they sign in again.
    assert _me(client, fresh["access_token"]).get_json()["code"] == "session_revoked"
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert again.get_json()["code"] == "session_revoked"


def _refresh(client, token):
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _session(signed_in) -> AuthSession:
    sid = jwt.decode(signed_in["access_token"], options={"verify_signature": False})["sid"]
    return db.session.scalar(select(AuthSession).where(AuthSession.public_id == sid))


def test_a_refresh_token_spent_rotations_ago_still_revokes_the_session(client, signed_in):
    # A thief refreshes with a stolen token first, twice (R1 -> R2 -> R3); then the owner's app presents R1.
    second = _refresh(client, signed_in["refresh_token"]).get_json()
    third = _refresh(client, second["refresh_token"]).get_json()
    replay = _refresh(client, signed_in["refresh_token"])
    assert replay.status_code == 401 and replay.get_json()["code"] == "refresh_token_invalid"
    assert _me(client, third["access_token"]).get_json()["code"] == "session_revoked"
    assert _refresh(client, third["refresh_token"]).get_json()["code"] == "session_revoked"
    assert _session(signed_in).revoked_reason == "refresh_token_reused"


@pytest.mark.parametrize("issued", ["naming_its_session", "before_tokens_named_their_session"])
def test_one_refresh_token_presented_at_once_rotates_once_and_ends_the_session(
    client, signed_in, server, issued
):
    # Four copies of one token at the same instant (a thief racing the owner, or an app refreshing twice):
    # exactly one rotates it, on every database. SQLite ignores FOR UPDATE, so each read the token as
    # current and rotated it. The others presented a token the session no longer holds: a reuse, which
    # ends the session, the winner's new pair with it (a race cannot tell the owner from the thief).
    token = signed_in["refresh_token"]
    if issued == "before_tokens_named_their_session":
        token = secrets.token_urlsafe(32)
        _session(signed_in).refresh_token_hash = tokens.hash_refresh_token(token)
        db.session.commit()
    body = {"refresh_token": token}
    answers = send_at_once([(server + "/api/v1/auth/refresh", body, {})] * 4)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 401, 401, 401], [a.json() for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 401} == {"refresh_token_invalid"}
    won = next(a.json() for a in answers if a.status_code == 200)
    assert _me(client, won["access_token"]).get_json()["code"] == "session_revoked"
    db.session.expire_all()
    assert _session(signed_in).revoked_reason == "refresh_token_reused"


def test_a_made_up_refresh_token_naming_a_session_does_not_end_it(client, signed_in):
    # The session's id is in every access token, readable by whoever sees one; it ends nothing by itself.
    sid = _session(signed_in).public_id
    made_up = signed_in["refresh_token"].split(".")
    for token in (f"{sid}.{made_up[1]}.{'A' * len(made_up[2])}", f"{sid}.x", f"{sid}.x.y.z", f"{sid}.好.好"):
        response = _refresh(client, token)
        assert response.status_code == 401 and response.get_json()["code"] == "refresh_token_invalid", token
    assert _refresh(client, signed_in["refresh_token"]).status_code == 200
    assert _refresh(client, "ses_nosuchsession0000000.x.y").get_json()["code"] == "refresh_token_invalid"


def test_refresh_tokens_issued_before_they_named_their_session_still_work(client, signed_in):
    session = _session(signed_in)
    issued_before = secrets.token_urlsafe(32)  # how refresh tokens looked: random alone
    session.refresh_token_hash = tokens.hash_refresh_token(issued_before)
    db.session.commit()
    fresh = _refresh(client, issued_before)
    assert fresh.status_code == 200
    assert fresh.get_json()["refresh_token"].startswith(session.public_id + ".")
    # Its reuse is caught however many rotations later, as the tokens after it are.
    later = _refresh(client, fresh.get_json()["refresh_token"]).get_json()
    assert _refresh(client, issued_before).get_json()["code"] == "refresh_token_invalid"
    assert _me(client, later["access_token"]).get_json()["code"] == "session_revoked"


def test_unknown_refresh_token_is_401(client):
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "refresh_token_invalid"


def test_logout_revokes_access_and_refresh(client, signed_in):
    headers = {"Authorization": "Bearer " + signed_in["access_token"]}
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert _me(client, signed_in["access_token"]).get_json()["code"] == "session_revoked"
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert refreshed.get_json()["code"] == "session_revoked"


def test_disabled_user_cannot_use_tokens(client, signed_in):
    user = db.session.scalar(select(User).where(User.public_id == signed_in["user"]["id"]))
    user.is_active = False
    db.session.commit()
    response = _me(client, signed_in["access_token"])
    assert response.status_code == 403
    assert response.get_json()["code"] == "user_disabled"


def test_bind_phone_needs_consent_then_stores_it_masked(client, fake_wechat, signed_in):
    headers = {"Authorization": "Bearer " + signed_in["access_token"]}
    code = fake_wechat.state.issue_phone_code("13800138000")
    refused = client.post("/api/v1/me/phone", json={"code": code}, headers=headers)
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "consent_required"
    assert refused.get_json()["details"]["consent"] == "phone"

    consent = client.post(
        "/api/v1/me/consents", json={"kind": "phone", "text_version": "2026-11"}, headers=headers
    )
    assert consent.status_code == 201
    code = fake_wechat.state.issue_phone_code("13800138000")
    bound = client.post("/api/v1/me/phone", json={"code": code}, headers=headers)
    assert bound.status_code == 200
    assert bound.get_json()["phone"] == "138****8000"
    user = db.session.scalar(select(User).where(User.public_id == signed_in["user"]["id"]))
    assert user.phone == "13800138000"


def test_a_phone_from_outside_the_mainland_keeps_its_country_code(client, fake_wechat, signed_in):
    headers = {"Authorization": "Bearer " + signed_in["access_token"]}
    client.post("/api/v1/me/consents", json={"kind": "phone", "text_version": "2026-11"}, headers=headers)
    code = fake_wechat.state.issue_phone_code("+852 61234567")
    bound = client.post("/api/v1/me/phone", json={"code": code}, headers=headers)
    assert bound.status_code == 200 and bound.get_json()["phone"] == "+85*****4567"
    user = db.session.scalar(select(User).where(User.public_id == signed_in["user"]["id"]))
    assert user.phone == "+85261234567"
    # A mainland number written with its country code is the same number as without.
    code = fake_wechat.state.issue_phone_code("+86 13800138000")
    mainland = client.post("/api/v1/me/phone", json={"code": code}, headers=headers)
    assert mainland.get_json()["phone"] == "138****8000"


def test_bind_phone_with_bad_code_is_400(client, signed_in):
    headers = {"Authorization": "Bearer " + signed_in["access_token"]}
    client.post("/api/v1/me/consents", json={"kind": "phone", "text_version": "2026-11"}, headers=headers)
    response = client.post("/api/v1/me/phone", json={"code": "bogus"}, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["code"] == "wechat_code_invalid"


def test_a_spent_or_stale_phone_code_asks_for_the_phone_again_not_a_new_login(client, fake_wechat, signed_in):
    """getPhoneNumber's code is not the login: a resident whose phone code was used or ran out is asked to
    tap 获取手机号 again, while still signed in (the login's words, 请重新登录, sent them to sign in again for
    nothing)."""
    headers = {"Authorization": "Bearer " + signed_in["access_token"]}
    client.post("/api/v1/me/consents", json={"kind": "phone", "text_version": "2026-11"}, headers=headers)
    code = fake_wechat.state.issue_phone_code("13800138000")
    assert client.post("/api/v1/me/phone", json={"code": code}, headers=headers).status_code == 200
    used = client.post("/api/v1/me/phone", json={"code": code}, headers=headers)
    assert used.status_code == 400
    assert used.get_json()["code"] == "wechat_code_used"
    assert used.get_json()["message"] == "手机号授权已使用过，请重新获取手机号"
    stale = client.post("/api/v1/me/phone", json={"code": "bogus"}, headers=headers)
    assert stale.status_code == 400
    assert stale.get_json()["code"] == "wechat_code_invalid"
    assert stale.get_json()["message"] == "手机号授权已失效，请重新获取手机号"
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    # The login's own code keeps the login's words.
    login = client.post("/api/v1/auth/login", json={"code": "bogus"})
    assert login.get_json()["message"] == "登录凭证无效，请重新登录"
