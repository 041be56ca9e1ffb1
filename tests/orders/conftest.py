"""Orders need the catalog, the working calendar and the notification templates; and a volunteer roster."""

import pytest

from backend.catalog.service import load_catalog, shipped_catalog
from backend.db import db
from backend.notify.service import seed_templates
from backend.organizations.models import OrganizationCategory
from backend.organizations.service import add_volunteer
from backend.sla.service import seed_official_calendar

ORDER = {
    "category": "companionship",
    "description": "独居老人，希望每周有人上门陪聊",
    "answers": {"frequency": "weekly"},
    "address": "阳光社区3号楼2单元501",
    "contact_name": "王秀英",
    "contact_phone": "13812348000",
}


@pytest.fixture(autouse=True)
def order_data(world):
    seed_official_calendar()
    seed_templates()
    load_catalog(shipped_catalog())
    world.other_organization.categories.append(OrganizationCategory(category_code="companionship"))
    world.other_organization.communities.append(world.community_a)
    db.session.commit()
    world.volunteer_entry = add_volunteer(
        org=world.organization,
        user_public_id=world.users["volunteer"].public_id,
        display_name="李志愿",
        skills="陪伴",
    )
    return world


@pytest.fixture
def place(client, auth):
    """``place(person="resident_a1", **changes)`` → the created order's JSON (asserting 201)."""

    def _place(person: str = "resident_a1", headers: dict | None = None, **changes) -> dict:
        response = client.post(
            "/api/v1/orders", json={**ORDER, **changes}, headers={**auth(person), **(headers or {})}
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return _place


@pytest.fixture
def act(client, auth):
    """``act("secretary_a", order, "accept", expect=200, **body)`` → the response JSON."""

    def _act(person: str, order: dict, action: str, expect: int = 200, **body) -> dict:
        response = client.post(f"/api/v1/orders/{order['id']}/{action}", json=body, headers=auth(person))
        assert response.status_code == expect, (action, response.get_json())
        return response.get_json()

    return _act
