"""A street admin lists who holds which role in their street (GET /memberships), so a role can be revoked
by the id the list shows: filtered by role and by scope, a keyset page at a time, phones masked."""

import pytest

from backend.auth.roles import Role, ScopeType
from backend.db import db
from tests.factories import make_member

URL = "/api/v1/memberships"


def _list(client, headers, **query) -> dict:
    response = client.get(URL, query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _all(client, headers, **query) -> list[dict]:
    items, cursor = [], None
    while True:
        page = _list(client, headers, limit=3, **({"cursor": cursor} if cursor else {}), **query)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _held(items: list[dict]) -> set[tuple[str, str]]:
    return {(item["user"]["nickname"], item["role"]) for item in items}


STREET_A = {
    ("resident_a1", "resident"),
    ("resident_b1", "resident"),
    ("grid_worker_a1", "grid_worker"),
    ("secretary_a", "secretary"),
    ("secretary_b", "secretary"),
    ("org_admin", "org_admin"),
    ("other_org_admin", "org_admin"),
    ("volunteer", "volunteer"),
    ("street_admin", "street_admin"),
}


def test_a_street_admin_lists_every_membership_in_their_street_and_no_other(client, auth, world):
    far_community = world.other_street.communities[0].id
    far = make_member(Role.SECRETARY, ScopeType.COMMUNITY, far_community, nickname="far")
    items = _all(client, auth("street_admin"))
    assert _held(items) == STREET_A
    assert len(items) == len(STREET_A)
    # The other street's admin sees theirs only: their own membership, and the secretary of their community.
    theirs = _all(client, auth("other_street_admin"))
    assert _held(theirs) == {("other_street_admin", "street_admin"), ("far", "secretary")}
    assert far.public_id not in {item["user"]["id"] for item in items}


def test_each_row_names_the_membership_its_scope_and_its_holder_phone_masked(client, auth, world):
    secretary = world.users["secretary_a"]
    secretary.phone = "13800138000"
    secretary.real_name = "李书记"
    db.session.commit()
    [row] = _list(client, auth("street_admin"), role="secretary", community_id=world.community_a.public_id)[
        "items"
    ]
    assert row == {
        "id": secretary.memberships[0].public_id,
        "role": "secretary",
        "role_label": "社区书记",
        "scope_type": "community",
        "scope_id": world.community_a.public_id,
        "scope_name": "阳光社区",
        "user": {
            "id": secretary.public_id,
            "nickname": "secretary_a",
            "real_name": "李书记",
            "phone": "138****8000",
        },
        "created_at": row["created_at"],
    }
    [grid_row] = _list(client, auth("street_admin"), role="grid_worker")["items"]
    assert (grid_row["scope_type"], grid_row["scope_id"], grid_row["scope_name"]) == (
        "grid",
        world.grid_a1.public_id,
        "第1网格",
    )
    [street_row] = _list(client, auth("street_admin"), role="street_admin")["items"]
    assert (street_row["scope_id"], street_row["scope_name"]) == (world.street.public_id, "幸福街道")
    [org_row] = _list(client, auth("street_admin"), role="volunteer")["items"]
    assert org_row["scope_id"] == world.organization.public_id
    assert org_row["scope_name"] == "邻里守望志愿服务队"


def test_the_list_filters_by_role_and_by_scope(client, auth, world):
    headers = auth("street_admin")
    assert _held(_all(client, headers, role="org_admin")) == {
        ("org_admin", "org_admin"),
        ("other_org_admin", "org_admin"),
    }
    # A community: its own memberships and its grids'.
    assert _held(_all(client, headers, community_id=world.community_a.public_id)) == {
        ("resident_a1", "resident"),
        ("grid_worker_a1", "grid_worker"),
        ("secretary_a", "secretary"),
    }
    assert _held(_all(client, headers, grid_id=world.grid_a1.public_id, role="resident")) == {
        ("resident_a1", "resident")
    }
    assert _held(_all(client, headers, organization_id=world.organization.public_id)) == {
        ("org_admin", "org_admin"),
        ("volunteer", "volunteer"),
    }
    assert _all(client, headers, grid_id=world.grid_a2.public_id) == []


def test_a_listed_id_revokes_the_membership(client, auth, world):
    headers = auth("street_admin")
    [row] = _list(client, headers, role="grid_worker")["items"]
    assert client.delete(f"{URL}/{row['id']}", headers=headers).status_code == 204
    assert _list(client, headers, role="grid_worker")["items"] == []


@pytest.mark.parametrize("who", ["secretary_a", "resident_a1", "org_admin", "grid_worker_a1", "newcomer"])
def test_only_street_admins_list_memberships(client, auth, who):
    response = client.get(URL, headers=auth(who))
    assert response.status_code == 403, response.get_json()


@pytest.mark.parametrize(
    "field", ["community_id", "grid_id", "organization_id"], ids=["community", "grid", "organization"]
)
def test_a_scope_of_another_street_or_none_is_refused_on_its_field(client, auth, world, field):
    other = world.other_street.communities[0]
    foreign = {
        "community_id": other.public_id,
        "grid_id": world.grid_a1.public_id,
        "organization_id": world.organization.public_id,
    }[field]
    who = "street_admin" if field == "community_id" else "other_street_admin"
    response = client.get(URL, query_string={field: foreign}, headers=auth(who))
    assert response.status_code == 403, response.get_json()
    assert list(response.get_json()["details"]) == [field]
    missing = client.get(URL, query_string={field: "xx_missing"}, headers=auth("street_admin"))
    assert missing.status_code == 404, missing.get_json()
    assert list(missing.get_json()["details"]) == [field]


@pytest.mark.parametrize(
    "query",
    [{"role": "mayor"}, {"limit": 0}, {"limit": 101}, {"cursor": "@@@"}, {"grid_id": "x" * 25}],
)
def test_bad_filters_are_422_on_their_field(client, auth, query):
    response = client.get(URL, query_string=query, headers=auth("street_admin"))
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["details"]) == list(query)
