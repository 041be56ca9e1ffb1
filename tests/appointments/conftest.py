"""Appointments run on a fixed calendar: "now" is Monday 2026-09-28 10:00 in Beijing, two weeks before which
lie the National Day holidays (10-01 to 10-07) and a make-up workday (Saturday 10-10).

Community A has a service point (阳光社区党群服务中心代办窗口) open Tuesdays 09:00–11:00 (5 places),
Wednesdays 14:00–17:00 (3) and Saturdays 09:00–12:00 (2); the street has its own point; community B one.
"""

from datetime import datetime, time

import pytest
import time_machine

from backend.appointments import service
from backend.auth.roles import Role, ScopeType
from backend.clock import LOCAL_TZ
from backend.db import db
from backend.errands.service import seed_errand_types
from backend.notify.service import seed_templates
from backend.sla.service import seed_official_calendar
from tests.factories import make_member

NOW = datetime(2026, 9, 28, 10, 0, tzinfo=LOCAL_TZ)
TUESDAY, WEDNESDAY, SATURDAY = "2026-09-29", "2026-09-30", "2026-10-10"
HOLIDAY_TUESDAY = "2026-10-06"


@pytest.fixture(autouse=True)
def frozen():
    """The clock starts at NOW and runs on (``frozen.move_to`` jumps)."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def points(frozen, world):
    seed_official_calendar()
    seed_templates()
    seed_errand_types()
    secretary, admin = world.users["secretary_a"], world.users["street_admin"]
    point = service.create_point(
        actor=secretary,
        name="阳光社区党群服务中心代办窗口",
        address="阳光社区幸福路 8 号",
        errand_types=["subsistence_allowance", "medicine_purchase"],
        community_public_id=world.community_a.public_id,
    )
    slots = {
        "tue": service.add_slot(
            actor=secretary, point=point, weekday=2, start=time(9), end=time(11), capacity=5
        ),
        "wed": service.add_slot(
            actor=secretary, point=point, weekday=3, start=time(14), end=time(17), capacity=3
        ),
        "sat": service.add_slot(
            actor=secretary, point=point, weekday=6, start=time(9), end=time(12), capacity=2
        ),
    }
    street_point = service.create_point(
        actor=admin,
        name="幸福街道便民服务中心",
        address="幸福街道政务大厅一楼",
        errand_types=["disability_certificate", "subsistence_allowance"],
    )
    street_slot = service.add_slot(
        actor=admin, point=street_point, weekday=2, start=time(14), end=time(16), capacity=10
    )
    point_b = service.create_point(
        actor=world.users["secretary_b"],
        name="和平社区代办窗口",
        address="和平社区和平路 1 号",
        errand_types=["subsistence_allowance"],
        community_public_id=world.community_b.public_id,
    )
    slot_b = service.add_slot(
        actor=world.users["secretary_b"], point=point_b, weekday=2, start=time(9), end=time(11), capacity=5
    )
    db.session.commit()
    world.point, world.slots = point, slots
    world.street_point, world.street_slot = street_point, street_slot
    world.point_b, world.slot_b = point_b, slot_b
    world.users["resident_a2_late"] = make_member(
        Role.RESIDENT, ScopeType.GRID, world.grid_a2.id, openid="openid-resident_a2_late"
    )
    return world


@pytest.fixture
def book(client, auth, world):
    """``book(person="resident_a1", slot="tue", date=TUESDAY, expect=201, headers=None, **body)`` → JSON."""

    def _book(person="resident_a1", slot="tue", date=TUESDAY, expect=201, headers=None, **body):
        slot_id = world.slots[slot].public_id if slot in world.slots else slot
        payload = {"slot_id": slot_id, "date": date, "errand_type": "subsistence_allowance", **body}
        response = client.post(
            "/api/v1/appointments", json=payload, headers={**auth(person), **(headers or {})}
        )
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return _book


@pytest.fixture
def act(client, auth):
    """``act("resident_a1", booking, "cancel", expect=200, **body)`` → the response JSON."""

    def _act(person, booking, action, expect=200, **body):
        response = client.post(
            f"/api/v1/appointments/{booking['id']}/{action}", json=body, headers=auth(person)
        )
        assert response.status_code == expect, (action, response.get_json())
        return response.get_json()

    return _act
