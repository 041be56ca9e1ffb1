"""Errands need the calendar, the notification templates, the shipped errand types and proxy agents."""

import io

import pytest

from backend.auth.roles import Role, ScopeType
from backend.db import db
from backend.errands.service import seed_errand_types
from backend.notify.service import seed_templates
from backend.sla.service import seed_official_calendar
from tests.errands.errand_helpers import PNG
from tests.factories import make_member


@pytest.fixture(autouse=True)
def errand_data(world):
    seed_official_calendar()
    seed_templates()
    seed_errand_types()
    for name, scope_type, scope_id in (
        ("agent_a", ScopeType.COMMUNITY, world.community_a.id),
        ("agent_a2", ScopeType.COMMUNITY, world.community_a.id),
        ("agent_b", ScopeType.COMMUNITY, world.community_b.id),
    ):
        world.users[name] = make_member(
            Role.PROXY_AGENT, scope_type, scope_id, openid=f"openid-{name}", nickname=name, real_name=name
        )
    world.users["resident_a1"].real_name = "王秀英"
    db.session.commit()
    return world


@pytest.fixture
def create(client, auth):
    """``create(person="resident_a1", type=..., **body)`` → the created errand's JSON (asserting 201)."""

    def _create(person: str = "resident_a1", expect: int = 201, headers: dict | None = None, **body) -> dict:
        body.setdefault("type", "subsistence_allowance")
        response = client.post("/api/v1/errands", json=body, headers={**auth(person), **(headers or {})})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return _create


@pytest.fixture
def act(client, auth):
    """``act("agent_a", errand, "lodge", expect=200, **body)`` → the response JSON."""

    def _act(person: str, errand: dict, action: str, expect: int = 200, **body) -> dict:
        url = f"/api/v1/errands/{errand['id']}/{action.replace('_', '-')}"
        response = client.post(url, json=body, headers=auth(person))
        assert response.status_code == expect, (action, response.get_json())
        return response.get_json()

    return _act


@pytest.fixture
def upload(client, auth):
    def _upload(person: str) -> str:
        response = client.post(
            "/api/v1/uploads",
            data={"file": (io.BytesIO(PNG), "receipt.png")},
            headers=auth(person),
            content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    return _upload


@pytest.fixture
def book(client, auth, world):
    """``book(person, errand_type, resident_id=None)`` → an appointment's id at the community's service point,
    booked through the API on its first free occurrence (the start of an errand: 网上预约)."""
    from datetime import time

    from backend.appointments import service as appointments

    point = appointments.create_point(
        actor=world.users["secretary_a"],
        name="阳光社区党群服务中心代办窗口",
        address="阳光社区幸福路 8 号",
        errand_types=["subsistence_allowance", "medicine_purchase", "disability_certificate"],
        community_public_id=world.community_a.public_id,
    )
    for weekday in range(1, 8):
        appointments.add_slot(
            actor=world.users["secretary_a"],
            point=point,
            weekday=weekday,
            start=time(9),
            end=time(17),
            capacity=20,
        )
    db.session.commit()

    def _book(person: str, errand_type: str, resident_id: str | None = None) -> str:
        free = client.get(f"/api/v1/service-points/{point.public_id}/availability").get_json()["items"]
        occurrence = next(o for o in free if o["available"])
        body = {"slot_id": occurrence["slot_id"], "date": occurrence["date"], "errand_type": errand_type}
        if resident_id:
            body["resident_id"] = resident_id
        response = client.post("/api/v1/appointments", json=body, headers=auth(person))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    return _book
