"""Social organizations and volunteer rosters."""

import base64

import pytest
from sqlalchemy import func, select

from backend.catalog.service import load_catalog, shipped_catalog
from backend.db import db
from backend.organizations.models import OrganizationCategory, Volunteer
from tests.factories import send_at_once


@pytest.fixture(autouse=True)
def catalog(world):
    """Organizations serve the catalog's categories."""
    load_catalog(shipped_catalog())
    db.session.commit()


def test_street_admin_registers_an_organization(client, auth, world):
    response = client.post(
        f"/api/v1/streets/{world.street.public_id}/organizations",
        json={
            "name": "心语心理咨询中心",
            "capacity": 6,
            "community_ids": [world.community_a.public_id],
            "categories": ["counselling"],
        },
        headers=auth("street_admin"),
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["community_ids"] == [world.community_a.public_id]
    assert body["categories"] == ["counselling"]


def test_organization_must_serve_communities_of_its_street(client, auth, world):
    response = client.post(
        f"/api/v1/streets/{world.street.public_id}/organizations",
        json={"name": "X", "community_ids": ["cm_elsewhere"]},
        headers=auth("street_admin"),
    )
    assert response.status_code == 422
    assert "community_ids" in response.get_json()["details"]


def test_filter_by_community_and_category(client, auth, world):
    headers = auth("resident_a1")
    by_community = client.get(
        "/api/v1/organizations", query_string={"community_id": world.community_b.public_id}, headers=headers
    )
    assert [o["name"] for o in by_community.get_json()["items"]] == ["安居维修服务社"]
    by_category = client.get(
        "/api/v1/organizations", query_string={"category": "companionship"}, headers=headers
    )
    assert [o["name"] for o in by_category.get_json()["items"]] == ["邻里守望志愿服务队"]


def test_org_admin_edits_own_organization_only(client, auth, world):
    own = client.patch(
        f"/api/v1/organizations/{world.organization.public_id}",
        json={"capacity": 30},
        headers=auth("org_admin"),
    )
    assert own.status_code == 200
    assert own.get_json()["capacity"] == 30
    other = client.patch(
        f"/api/v1/organizations/{world.other_organization.public_id}",
        json={"capacity": 30},
        headers=auth("org_admin"),
    )
    assert other.status_code == 403


def test_org_admin_adds_a_volunteer_who_gets_the_role(client, auth, world):
    newcomer = world.users["newcomer"]
    response = client.post(
        f"/api/v1/organizations/{world.organization.public_id}/volunteers",
        json={"user_id": newcomer.public_id, "display_name": "小李"},
        headers=auth("org_admin"),
    )
    assert response.status_code == 201
    roster = client.get(
        f"/api/v1/organizations/{world.organization.public_id}/volunteers", headers=auth("org_admin")
    ).get_json()
    assert [v["display_name"] for v in roster["items"]] == ["小李"]
    me = client.get("/api/v1/me", headers=auth("newcomer")).get_json()
    assert [r["role"] for r in me["roles"]] == ["volunteer"]
    denied = client.get(
        f"/api/v1/organizations/{world.organization.public_id}/volunteers", headers=auth("other_org_admin")
    )
    assert denied.status_code == 403


@pytest.mark.parametrize("key", [str(2**31), str(2**70), "-" + str(2**63)])
def test_a_cursor_past_any_id_is_422(client, auth, world, key):
    cursor = base64.urlsafe_b64encode(key.encode()).decode()
    response = client.get(
        "/api/v1/organizations", query_string={"cursor": cursor}, headers=auth("resident_a1")
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"] == {"cursor": ["无效的游标"]}


def test_one_name_registered_twice_at_once_makes_one_organization(auth, world, server):
    url = f"{server}/api/v1/streets/{world.street.public_id}/organizations"
    body = {"name": "心语心理咨询中心", "community_ids": [world.community_a.public_id]}
    headers = auth("street_admin")
    codes = sorted(r.status_code for r in send_at_once([(url, body, headers)] * 6, timeout=30))
    assert codes == [201] + [422] * 5


def test_a_volunteer_added_twice_at_once_is_on_the_roster_once(auth, world, server):
    url = f"{server}/api/v1/organizations/{world.organization.public_id}/volunteers"
    body = {"user_id": world.users["newcomer"].public_id, "display_name": "小李"}
    responses = send_at_once([(url, body, auth("org_admin"))] * 6, timeout=30)
    assert [r.status_code for r in responses] == [201] * 6, [r.json() for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Volunteer)) == 1


def test_categories_changed_at_once_leave_one_of_the_settings(auth, world, server):
    url = f"{server}/api/v1/organizations/{world.organization.public_id}"
    settings = [
        ["home_repair"],
        ["home_repair", "elderly_care"],
        ["legal_advice"],
        ["companionship", "home_repair"],
    ] * 2
    requests_to_send = [(url, {"categories": codes}, auth("org_admin")) for codes in settings]
    responses = send_at_once(requests_to_send, timeout=30, method="PATCH")
    assert [r.status_code for r in responses] == [200] * len(settings), [r.json() for r in responses]
    db.session.expire_all()
    kept = db.session.scalars(
        select(OrganizationCategory.category_code).where(
            OrganizationCategory.organization_id == world.organization.id
        )
    ).all()
    assert sorted(kept) in [sorted(codes) for codes in settings]


def test_an_organization_serves_only_categories_the_catalog_has(client, auth, world):
    """A code the catalog lacks (a typo, an old name) would keep the organization out of every
    recommendation for what was meant."""
    registered = client.post(
        f"/api/v1/streets/{world.street.public_id}/organizations",
        json={
            "name": "心语心理咨询中心",
            "community_ids": [world.community_a.public_id],
            "categories": ["counselling", "psychological_counselling"],
        },
        headers=auth("street_admin"),
    )
    assert registered.status_code == 422
    assert registered.get_json()["details"] == {"categories": ["服务分类不存在：psychological_counselling"]}
    changed = client.patch(
        f"/api/v1/organizations/{world.organization.public_id}",
        json={"categories": ["companionship", "no_such_category"]},
        headers=auth("org_admin"),
    )
    assert changed.status_code == 422 and "categories" in changed.get_json()["details"]


def test_a_volunteer_who_is_no_user_or_cannot_sign_in_is_422_by_field(client, auth, world):
    # An unknown user id in the body answered 404 (as if the organization were missing), naming no field; a
    # disabled account went on the roster, where orders assigned to it waited for someone who cannot sign in.
    url = f"/api/v1/organizations/{world.organization.public_id}/volunteers"
    body = {"user_id": "u_nobody", "display_name": "小李"}
    unknown = client.post(url, json=body, headers=auth("org_admin"))
    assert unknown.status_code == 422, unknown.get_json()
    assert unknown.get_json()["details"] == {"user_id": ["用户不存在"]}
    world.users["newcomer"].is_active = False
    db.session.commit()
    body = {"user_id": world.users["newcomer"].public_id, "display_name": "小李"}
    disabled = client.post(url, json=body, headers=auth("org_admin"))
    assert disabled.status_code == 422, disabled.get_json()
    assert disabled.get_json()["details"] == {"user_id": ["该用户账号已停用"]}
    assert db.session.scalar(select(func.count()).select_from(Volunteer)) == 0


def test_adding_a_volunteer_again_takes_the_name_and_skills_given(client, auth, world):
    url = f"/api/v1/organizations/{world.organization.public_id}/volunteers"
    user_id = world.users["newcomer"].public_id
    first = client.post(
        url, json={"user_id": user_id, "display_name": "小李", "skills": "维修"}, headers=auth("org_admin")
    )
    assert first.status_code == 201
    renamed = client.post(url, json={"user_id": user_id, "display_name": "李师傅"}, headers=auth("org_admin"))
    assert renamed.status_code == 201
    # The same roster entry, its name corrected; skills not given stay as they were.
    assert renamed.get_json()["id"] == first.get_json()["id"]
    assert (renamed.get_json()["display_name"], renamed.get_json()["skills"]) == ("李师傅", "维修")
    roster = client.get(url, headers=auth("org_admin")).get_json()["items"]
    assert [(v["display_name"], v["skills"]) for v in roster] == [("李师傅", "维修")]
