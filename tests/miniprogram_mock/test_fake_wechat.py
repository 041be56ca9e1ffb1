"""The fake WeChat server over real HTTP, through requests and through wechatpy's own client."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import time_machine
from wechatpy.exceptions import WeChatClientException

from miniprogram_mock.fake_wechat import FakeWeChatServer, FakeWeChatState

TEMPLATE = "tpl-order-accepted"
DATA = {"thing1": {"value": "代购药品"}, "time2": {"value": "2026-11-03 10:00"}}
REPO = Path(__file__).resolve().parents[2]
# The app the conftest's `wechat` server is configured for.
APPID = "wx-test-app"
SECRET = "test-app-secret"


def get(wechat, path, **params):
    return requests.get(wechat.url + path, params=params, timeout=10)


def post(wechat, path, json=None, **params):
    return requests.post(wechat.url + path, json=json, params=params, timeout=10)


def fresh_token(wechat) -> str:
    body = get(wechat, "cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET).json()
    return body["access_token"]


def session_of(wechat, code, **overrides):
    params = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}
    return get(wechat, "sns/jscode2session", **{**params, **overrides}).json()


# --- access token ------------------------------------------------------------------------------------


def test_token_is_issued_for_the_right_app(wechat):
    response = get(wechat, "cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET)
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 7200
    assert body["access_token"]
    assert "errcode" not in body


@pytest.mark.parametrize(
    ("params", "errcode", "errmsg"),
    [
        ({"appid": "wx-other"}, 40013, "invalid appid"),
        ({"secret": "wrong"}, 40125, "invalid appsecret"),
        ({"grant_type": "password"}, 40002, "invalid grant_type"),
    ],
)
def test_token_rejects_bad_credentials(wechat, params, errcode, errmsg):
    query = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, **params}
    response = get(wechat, "cgi-bin/token", **query)
    assert response.status_code == 200
    assert response.json() == {"errcode": errcode, "errmsg": errmsg}


def test_conftest_app_matches(state):
    assert (state.appid, state.secret) == (APPID, SECRET)


def test_wrong_secret_fails_wechatpy_token_fetch(make_client):
    with pytest.raises(WeChatClientException) as caught:
        make_client(secret="wrong").fetch_access_token()
    assert caught.value.errcode == 40125
    with pytest.raises(WeChatClientException) as caught:
        make_client(secret="wrong").wxa.code_to_session("any")
    assert caught.value.errcode == 40125


# --- jscode2session ----------------------------------------------------------------------------------


def test_code_to_session_without_unionid(wx, state):
    code, openid = state.issue_login_code()
    result = wx.wxa.code_to_session(code)
    assert result["openid"] == openid
    assert result["session_key"]
    assert "unionid" not in result
    assert openid.startswith("o")
    assert len(openid) == 28


def test_code_to_session_with_unionid_keeps_it_for_later_codes(wx, state):
    code, openid = state.issue_login_code(openid="o-fixed-user", unionid="u-fixed-user")
    result = wx.wxa.code_to_session(code)
    assert (result["openid"], result["unionid"]) == ("o-fixed-user", "u-fixed-user")
    later, _ = state.issue_login_code(openid)
    assert wx.wxa.code_to_session(later)["unionid"] == "u-fixed-user"


def test_code_works_exactly_once(wx, state):
    code, _ = state.issue_login_code()
    wx.wxa.code_to_session(code)
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.code_to_session(code)
    assert caught.value.errcode == 40163
    assert caught.value.errmsg == "code been used"


def test_unknown_code_is_40029(wx):
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.code_to_session("never-issued")
    assert caught.value.errcode == 40029
    assert caught.value.errmsg == "invalid code"


def test_code_expires_after_code_ttl(wx, state):
    live, _ = state.issue_login_code()
    stale, _ = state.issue_login_code()
    with time_machine.travel(time.time() + state.code_ttl - 5, tick=False):
        assert wx.wxa.code_to_session(live)["openid"]
    with (
        time_machine.travel(time.time() + state.code_ttl + 1, tick=False),
        pytest.raises(WeChatClientException) as caught,
    ):
        wx.wxa.code_to_session(stale)
    assert caught.value.errcode == 40029


def test_jscode2session_checks_the_app_and_the_code(wechat, state):
    code, _ = state.issue_login_code()
    assert session_of(wechat, code, secret="wrong")["errcode"] == 40125
    assert session_of(wechat, code, appid="wx-other")["errcode"] == 40013
    assert session_of(wechat, code, grant_type="client_credential")["errcode"] == 40002
    assert session_of(wechat, "")["errcode"] == 41008
    # Rejected calls did not use the code up.
    assert "openid" in session_of(wechat, code)


# --- getuserphonenumber ------------------------------------------------------------------------------


def test_phone_number_through_wechatpy(wx, state):
    code = state.issue_phone_code("13800138000")
    result = wx.wxa._post("wxa/business/getuserphonenumber", data={"code": code})
    assert result["errcode"] == 0
    assert result["errmsg"] == "ok"
    info = result["phone_info"]
    assert info["phoneNumber"] == "13800138000"
    assert info["purePhoneNumber"] == "13800138000"
    assert info["countryCode"] == "86"
    assert info["watermark"]["appid"] == APPID
    assert abs(info["watermark"]["timestamp"] - time.time()) < 60
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa._post("wxa/business/getuserphonenumber", data={"code": code})
    assert caught.value.errcode == 40163
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa._post("wxa/business/getuserphonenumber", data={"code": "never-issued"})
    assert caught.value.errcode == 40029


def test_foreign_phone_number_keeps_its_country_code(wx, state):
    code = state.issue_phone_code("+852 61234567")
    info = wx.wxa._post("wxa/business/getuserphonenumber", data={"code": code})["phone_info"]
    assert info == info | {
        "phoneNumber": "+852 61234567",
        "purePhoneNumber": "61234567",
        "countryCode": "852",
    }


def test_phone_code_expires_after_code_ttl(wechat, state):
    code = state.issue_phone_code("13800138000")
    with time_machine.travel(time.time() + state.code_ttl + 1, tick=False):
        token = fresh_token(wechat)
        body = post(wechat, "wxa/business/getuserphonenumber", {"code": code}, access_token=token).json()
    assert body["errcode"] == 40029


@pytest.mark.parametrize(
    ("token", "errcode"),
    [(None, 41001), ("not-a-token", 40001)],
)
def test_phone_number_needs_a_valid_access_token(wechat, state, token, errcode):
    code = state.issue_phone_code("13800138000")
    params = {"access_token": token} if token else {}
    body = post(wechat, "wxa/business/getuserphonenumber", {"code": code}, **params).json()
    assert body["errcode"] == errcode
    # The code survives a call rejected for its token.
    body = post(wechat, "wxa/business/getuserphonenumber", {"code": code}, access_token=fresh_token(wechat))
    assert body.json()["errcode"] == 0


def test_access_token_expires_after_token_ttl(wechat, state):
    token = fresh_token(wechat)
    code = state.issue_phone_code("13800138000")
    with time_machine.travel(time.time() + state.token_ttl + 1, tick=False):
        body = post(wechat, "wxa/business/getuserphonenumber", {"code": code}, access_token=token).json()
    assert body == {"errcode": 42001, "errmsg": "access_token expired"}


def test_previous_token_works_for_five_minutes_after_a_new_one(wechat, state):
    old = fresh_token(wechat)
    new = fresh_token(wechat)
    start = time.time()
    with time_machine.travel(start + 299, tick=False):
        code = state.issue_phone_code("13800138000")
        assert (
            post(wechat, "wxa/business/getuserphonenumber", {"code": code}, access_token=old).json()[
                "errcode"
            ]
            == 0
        )
    with time_machine.travel(start + 301, tick=False):
        code = state.issue_phone_code("13800138000")
        body = post(wechat, "wxa/business/getuserphonenumber", {"code": code}, access_token=old).json()
        assert body["errcode"] == 40001
        body = post(wechat, "wxa/business/getuserphonenumber", {"code": code}, access_token=new).json()
        assert body["errcode"] == 0


def test_post_endpoints_refuse_get_and_bad_json(wechat):
    token = fresh_token(wechat)
    assert get(wechat, "wxa/business/getuserphonenumber", access_token=token).json()["errcode"] == 43002
    response = requests.post(
        wechat.url + "wxa/business/getuserphonenumber",
        params={"access_token": token},
        data=b"{not json",
        timeout=10,
    )
    assert response.json()["errcode"] == 47001


# --- subscribe messages ------------------------------------------------------------------------------


def test_subscribe_message_is_recorded(wechat, wx, state):
    _, openid = state.issue_login_code()
    result = wx.wxa.send_subscribe_message(openid, TEMPLATE, DATA, page="pages/orders/detail?id=7")
    assert result["errcode"] == 0
    assert isinstance(result["msgid"], int)
    wx.wxa.send_subscribe_message("o-someone-else", TEMPLATE, DATA)

    (message,) = state.messages(touser=openid)
    assert message["touser"] == openid
    assert message["template_id"] == TEMPLATE
    assert message["page"] == "pages/orders/detail?id=7"
    assert message["data"] == DATA
    assert message["msgid"] == result["msgid"]
    assert abs(message["sent_at"] - time.time()) < 60
    assert len(state.messages()) == 2

    over_http = get(wechat, "_mock/messages", touser=openid).json()
    assert over_http == {"items": [message]}
    assert len(get(wechat, "_mock/messages").json()["items"]) == 2


def test_refused_template_is_43101(wx, state):
    state.refuse("o-refuser", TEMPLATE)
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.send_subscribe_message("o-refuser", TEMPLATE, DATA)
    assert caught.value.errcode == 43101
    assert caught.value.errmsg == "user refuse to accept the msg"
    assert state.messages() == []
    # Only that template is refused.
    wx.wxa.send_subscribe_message("o-refuser", "tpl-other", DATA)
    assert len(state.messages("o-refuser")) == 1


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"template_id": TEMPLATE, "data": DATA}, 40003),
        ({"touser": "o-user", "data": DATA}, 40037),
        ({"touser": "o-user", "template_id": TEMPLATE}, 47003),
        ({"touser": "o-user", "template_id": TEMPLATE, "data": {"thing1": "no value wrapper"}}, 47003),
    ],
)
def test_subscribe_send_validates_the_message(wechat, state, body, errcode):
    response = post(wechat, "cgi-bin/message/subscribe/send", body, access_token=fresh_token(wechat))
    assert response.status_code == 200
    assert response.json()["errcode"] == errcode
    assert state.messages() == []


# --- faults ------------------------------------------------------------------------------------------


def test_injected_errcode_fails_count_calls_then_recovers(wx, state):
    state.inject_fault("subscribe_send", errcode=45011, count=2)
    for _ in range(2):
        with pytest.raises(WeChatClientException) as caught:
            wx.wxa.send_subscribe_message("o-user", TEMPLATE, DATA)
        assert caught.value.errcode == 45011
    assert wx.wxa.send_subscribe_message("o-user", TEMPLATE, DATA)["errcode"] == 0
    assert state.calls("subscribe_send") == 3
    assert len(state.messages()) == 1


def test_expired_tokens_are_refetched_by_wechatpy(wx, state):
    _, openid = state.issue_login_code()
    wx.wxa.send_subscribe_message(openid, TEMPLATE, DATA)
    assert state.calls("token") == 1
    state.expire_tokens()
    assert wx.wxa.send_subscribe_message(openid, TEMPLATE, DATA)["errcode"] == 0
    assert state.calls("token") == 2
    assert state.calls("subscribe_send") == 3
    assert len(state.messages(openid)) == 2


def test_http_502_is_a_wechatpy_exception_without_errcode(wechat, wx, state):
    state.inject_fault("subscribe_send", http_status=502)
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.send_subscribe_message("o-user", TEMPLATE, DATA)
    assert caught.value.errcode is None
    assert caught.value.response.status_code == 502

    state.inject_fault("token", http_status=500)
    response = get(wechat, "cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET)
    assert response.status_code == 500
    with pytest.raises(ValueError):
        response.json()


def test_faulted_call_counts_but_does_not_use_the_code(wx, state):
    code, openid = state.issue_login_code()
    state.inject_fault("jscode2session", errcode=-1)
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.code_to_session(code)
    assert caught.value.errcode == -1
    assert wx.wxa.code_to_session(code)["openid"] == openid
    assert state.calls("jscode2session") == 2


def test_delay_slows_the_answer(wechat, state):
    state.inject_fault("token", delay=0.2)
    started = time.monotonic()
    token = fresh_token(wechat)
    assert time.monotonic() - started >= 0.2
    assert token
    state.inject_fault("token", delay=0.2, errcode=45009)
    started = time.monotonic()
    body = get(wechat, "cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET).json()
    assert time.monotonic() - started >= 0.2
    assert body["errcode"] == 45009


def test_faults_queue_in_order(wechat, state):
    state.inject_fault("token", errcode=-1)
    state.inject_fault("token", errcode=45009)
    query = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    assert get(wechat, "cgi-bin/token", **query).json()["errcode"] == -1
    assert get(wechat, "cgi-bin/token", **query).json()["errcode"] == 45009
    assert "access_token" in get(wechat, "cgi-bin/token", **query).json()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "nope", "errcode": -1},
        {"endpoint": "token"},
        {"endpoint": "token", "errcode": -1, "http_status": 500},
        {"endpoint": "token", "errcode": -1, "count": 0},
    ],
)
def test_inject_fault_rejects_nonsense(state, kwargs):
    with pytest.raises(ValueError):
        state.inject_fault(**kwargs)


# --- control endpoints -------------------------------------------------------------------------------


def test_control_endpoints_drive_the_state(wechat, wx, state):
    issued = post(wechat, "_mock/login-code", {"openid": "o-demo", "unionid": "u-demo"}).json()
    assert issued["openid"] == "o-demo"
    assert wx.wxa.code_to_session(issued["code"])["unionid"] == "u-demo"
    random_user = post(wechat, "_mock/login-code").json()
    assert random_user["openid"].startswith("o")
    assert wx.wxa.code_to_session(random_user["code"])["openid"] == random_user["openid"]

    phone_code = post(wechat, "_mock/phone-code", {"phone": "13900139000"}).json()["code"]
    result = wx.wxa._post("wxa/business/getuserphonenumber", data={"code": phone_code})
    assert result["phone_info"]["purePhoneNumber"] == "13900139000"
    assert post(wechat, "_mock/phone-code", {}).status_code == 400

    assert post(wechat, "_mock/refusals", {"openid": "o-demo", "template_id": TEMPLATE}).json() == {
        "ok": True
    }
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.send_subscribe_message("o-demo", TEMPLATE, DATA)
    assert caught.value.errcode == 43101

    fault = {"endpoint": "subscribe_send", "errcode": 45011, "count": 1}
    assert post(wechat, "_mock/faults", fault).status_code == 200
    assert post(wechat, "_mock/faults", {"endpoint": "nope", "errcode": 1}).status_code == 400
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.send_subscribe_message("o-other", TEMPLATE, DATA)
    assert caught.value.errcode == 45011

    assert post(wechat, "_mock/expire-tokens").status_code == 200
    wx.wxa.send_subscribe_message("o-other", TEMPLATE, DATA)

    stats = get(wechat, "_mock/stats").json()
    assert stats == {"calls": {"token": 2, "jscode2session": 2, "getuserphonenumber": 1, "subscribe_send": 4}}
    assert stats["calls"]["token"] == state.calls("token")

    assert post(wechat, "_mock/reset").json() == {"ok": True}
    assert get(wechat, "_mock/stats").json()["calls"] == dict.fromkeys(stats["calls"], 0)
    assert get(wechat, "_mock/messages").json() == {"items": []}
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.code_to_session(issued["code"])
    assert caught.value.errcode == 40029


# --- the server itself -------------------------------------------------------------------------------


def test_server_serves_from_start_to_stop():
    server = FakeWeChatServer(FakeWeChatState()).start()
    try:
        url = server.url
        assert url == f"http://127.0.0.1:{server.port}/"
        assert requests.get(url + "_mock/stats", timeout=10).status_code == 200
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "_mock/stats", timeout=10)


def test_main_serves_until_sigterm():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "miniprogram_mock.fake_wechat", "--port", "0", "--quiet", "--appid", "wx-cli"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[-1].strip()
        assert url.startswith("http://127.0.0.1:"), line
        body = requests.get(
            url + "cgi-bin/token",
            params={"grant_type": "client_credential", "appid": "wx-cli", "secret": "dev-wechat-secret"},
            timeout=10,
        ).json()
        assert body["expires_in"] == 7200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", "一二三四五六七八九十一二三四五六七八九十一"),  # 21 characters
        ("phrase3", "终止并退还现金"),  # more than 5
        ("phrase3", "社区已受…"),  # not Chinese characters only
        ("phrase3", "OK"),
        ("character_string2", "工单SD001"),  # digits, letters and symbols only
        ("character_string2", "A" * 33),
        ("number4", "SD001"),  # digits only, with a decimal point
        ("letter5", "abc1"),
        ("symbol6", "abc"),
        ("amount7", "十元"),
        ("phone_number8", "1" * 18),
        ("car_number9", "粤A8Z888挂挂"),
        ("name10", "欧阳一二三四五六七八九"),  # 11 Chinese characters
        ("thing1", ""),
    ],
)
def test_subscribe_send_enforces_wechats_value_rules(wx, state, key, value):
    """WeChat checks each value by its keyword's kind (thing ≤ 20 characters, phrase ≤ 5 Chinese characters
    only, ...) and refuses the message with 47003 naming the keyword."""
    with pytest.raises(WeChatClientException) as caught:
        wx.wxa.send_subscribe_message("o-user", TEMPLATE, {key: {"value": value}})
    assert caught.value.errcode == 47003
    assert f"data.{key}.value" in caught.value.errmsg
    assert state.messages() == []


def test_subscribe_send_takes_values_within_the_rules(wx, state):
    data = {
        "thing1": {"value": "一二三四五六七八九十一二三四五六七八九十"},
        "phrase3": {"value": "部门审核中"},
        "character_string2": {"value": "SD20260501-001"},
        "time4": {"value": "2026年05月01日 09:30"},
        "date5": {"value": "2026年05月01日"},
        "number6": {"value": "12.50"},
        "letter7": {"value": "abc"},
        "symbol8": {"value": "+-"},
        "amount9": {"value": "¥12.50元"},
        "phone_number10": {"value": "+86-0766-66888866"},
        "car_number11": {"value": "粤A8Z888挂"},
        "name12": {"value": "欧阳娜娜"},
    }
    assert wx.wxa.send_subscribe_message("o-user", TEMPLATE, data)["errcode"] == 0
    assert state.messages()[0]["data"] == data
