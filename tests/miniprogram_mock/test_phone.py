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


@pytest.fixture
def town(world):
    """The world with what orders and errands need: calendar, templates, catalog, errand types, an agent,
    and a service point of community A open every day."""
    from datetime import time

    from backend.appointments import service as appointments
    from backend.auth.roles import Role, ScopeType
    from backend.catalog.service import load_catalog, shipped_catalog
    from backend.db import db
    from backend.errands.service import seed_errand_types
    from backend.notify.service import seed_templates
    from backend.sla.service import seed_official_calendar
    from tests.factories import make_member

    seed_official_calendar()
    seed_templates()
    load_catalog(shipped_catalog())
    seed_errand_types()
    world.users["agent_a"] = make_member(
        Role.PROXY_AGENT,
        ScopeType.COMMUNITY,
        world.community_a.id,
        openid="openid-agent_a",
        real_name="代办员",
    )
    point = appointments.create_point(
        actor=world.users["secretary_a"],
        name="阳光社区代办窗口",
        address="党群服务中心一楼",
        errand_types=["subsistence_allowance"],
        community_public_id=world.community_a.public_id,
    )
    for weekday in range(1, 8):
        appointments.add_slot(
            actor=world.users["secretary_a"],
            point=point,
            weekday=weekday,
            start=time(0, 0),
            end=time(23, 59),
            capacity=5,
        )
    db.session.commit()
    world.point_id = point.public_id
    return world


def _phone(api_url, fake_wechat, world, name: str) -> Phone:
    phone = Phone(api_url, fake_wechat.url, openid=world.users[name].openid)
    phone.login()
    return phone


def test_subscribe_grants_the_templates_like_request_subscribe_message(api_url, fake_wechat, town):
    with _phone(api_url, fake_wechat, town, "resident_a1") as resident:
        templates = resident.get("/notifications/templates")["items"]
        grants = resident.subscribe(["order_resolved"])
        assert {g["template_id"] for g in grants if g["remaining"]} == {
            t["template_id"] for t in templates if t["event"] == "order_resolved"
        }
        everything = resident.subscribe()
        assert len([g for g in everything if g["remaining"]]) == len({t["template_id"] for t in templates})


def test_role_helpers_carry_an_order_and_an_errand(api_url, fake_wechat, town):
    phones = {
        name: _phone(api_url, fake_wechat, town, name) for name in ("resident_a1", "secretary_a", "agent_a")
    }
    resident, secretary, agent = phones["resident_a1"], phones["secretary_a"], phones["agent_a"]
    try:
        fields = {"address": "1号楼101", "contact_name": "王秀英", "contact_phone": "13800000001"}
        order = resident.place_order("cleaning", "想请人打扫卫生", key="order-1", **fields)
        again = resident.place_order("cleaning", "想请人打扫卫生", key="order-1", **fields)
        assert again["id"] == order["id"]  # the same Idempotency-Key: one order
        assert secretary.order_action(order["id"], "accept")["state"] == "accepted"

        slot = resident.first_free_slot(town.point_id)
        booking = resident.book(slot["slot_id"], slot["date"], "subsistence_allowance")
        errand = resident.book_errand("subsistence_allowance", appointment_id=booking["id"])
        assert errand["state"] == "appointed" and errand["appointment_id"] == booking["id"]
        errand = secretary.errand_action(
            errand["id"], "accept", agent_id=town.users["agent_a"].public_id, eligibility_note="资格初审通过"
        )
        assert errand["state"] == "accepted"
        queue = agent.get("/errands/queue")["items"]
        assert [e["id"] for e in queue] == [errand["id"]]
        missing = agent.errand_action(errand["id"], "request_materials", missing=["application_form"])
        assert missing["state"] == "materials_pending"
    finally:
        for phone in phones.values():
            phone.close()
