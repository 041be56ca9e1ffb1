"""The scripted phone against the real backend (served over HTTP) and the fake WeChat server."""

import threading

import pytest
from werkzeug.serving import make_server

from miniprogram_mock.phone import Phone, PhoneError


@pytest.fixture
def api_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def phone(api_url, fake_wechat):
    with Phone(api_url, fake_wechat.url) as phone:
        yield phone


def test_login_keeps_one_openid_and_one_user(phone):
    first = phone.login(nickname="李桂兰")
    second = phone.login()
    assert first["user"]["id"] == second["user"]["id"]
    assert phone.get("/me")["nickname"] == "李桂兰"


def test_consent_then_bind_phone(phone):
    phone.login()
    with pytest.raises(PhoneError) as refused:
        phone.bind_phone("13800138000")
    assert refused.value.status == 403
    assert refused.value.code == "consent_required"
    phone.consent("phone")
    phone.bind_phone("13800138000")
    assert phone.user["phone"] == "138****8000"
    assert phone.get("/me")["phone"] == "138****8000"


def test_expired_access_token_is_refreshed_once_and_retried(phone, app):
    import time_machine

    from backend import clock

    phone.login()
    old_refresh = phone.refresh_token
    with time_machine.travel(clock.now().timestamp() + app.config["ACCESS_TOKEN_TTL"] + 5):
        me = phone.get("/me")
    assert me["id"] == phone.user["id"]
    assert phone.refresh_token != old_refresh


def test_expect_and_errors(phone):
    phone.login()
    response = phone.call("GET", "/privacy/access-logs", expect=403)
    assert response.json()["code"] == "forbidden"
    with pytest.raises(PhoneError) as wrong:
        phone.call("GET", "/me", expect=201)
    assert wrong.value.status == 200
    assert phone.delete("/me/consents/phone", expect=404)["code"] == "not_found"
