"""Every endpoint declares who may call it; roles and scopes are enforced before the view runs."""

import re
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import select

from backend.auth import access
from backend.auth.models import RoleMembership
from backend.db import db
from backend.errors import Forbidden


def test_every_endpoint_declares_access(app):
    assert access.undeclared_endpoints(app) == []
    for endpoint in app.view_functions:
        rule = access.rule_for(app, endpoint)
        # Any signed-in user, saying or not whom the service lets through (access.signed_in_as).
        assert rule.public or rule.roles or rule == access.AccessRule(standing=rule.standing), endpoint


def test_an_undeclared_endpoint_is_found(app):
    bare = Flask("probe", static_folder=None)

    @bare.get("/open")
    def open_view():
        return "no declaration"

    assert access.undeclared_endpoints(bare) == ["open_view"]


def test_public_endpoints_are_only_the_expected_ones(app):
    public = sorted(ep for ep in app.view_functions if access.rule_for(app, ep).public)
    assert public == [
        "api-docs.openapi_json",
        "api-docs.openapi_swagger_ui",
        # Appointments: anyone may find a service point and its free places.
        "appointments.availability",
        "appointments.get_point",
        "appointments.list_points",
        "auth.login",
        "auth.refresh",
        # The service catalog: anyone may read what can be ordered.
        "catalog.get_category",
        "catalog.list_categories",
        "health.healthz",
        "health.readyz",
        "swagger_assets",
    ]


def test_every_non_public_endpoint_answers_401_without_a_token(app, client):
    for rule in app.url_map.iter_rules():
        if access.rule_for(app, rule.endpoint).public:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int:{arg}>", "1").replace(f"<string:{arg}>", "x").replace(f"<{arg}>", "x")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, json={})
            assert response.status_code == 401, (method, url, response.get_json())


def test_wrong_role_is_403(client, auth):
    response = client.get("/api/v1/privacy/access-logs", headers=auth("resident_a1"))
    assert response.status_code == 403
    assert response.get_json()["details"]["required_roles"] == ["street_admin"]


def test_a_declared_refusal_answers_those_who_hold_none_of_the_roles(monkeypatch):
    """Out of the target's scope is the generic 403 still; holding none of the roles anywhere, the
    declaration's own refusal (which can say how to come by one)."""
    from backend.auth import service

    bare = Flask("probe", static_folder=None)
    caller = SimpleNamespace(memberships=[])
    monkeypatch.setattr(service, "authenticate_bearer", lambda header: caller)

    @bare.get("/communities/<int:community_id>/probe")
    @access.roles(
        "secretary",
        scope=lambda args: [("community", args["community_id"])],
        refusal=lambda: Forbidden("请先登记", code="registration_required"),
    )
    def probe(community_id):
        return "in"

    def answer(community_id: int) -> str:
        with bare.test_request_context(f"/communities/{community_id}/probe"):
            try:
                access.enforce()
            except Forbidden as refused:
                return refused.code
            return "allowed"

    assert answer(1) == "registration_required"
    caller.memberships = [SimpleNamespace(role="secretary", scope_type="community", scope_id=2)]
    assert answer(1) == "forbidden"
    assert answer(2) == "allowed"


@pytest.mark.parametrize(
    ("who", "community", "status"),
    [
        ("secretary_a", "community_a", 200),
        ("secretary_a", "community_b", 403),
        ("secretary_b", "community_b", 200),
        ("street_admin", "community_a", 200),
        ("street_admin", "community_b", 200),
        ("other_street_admin", "community_a", 403),
        ("grid_worker_a1", "community_a", 403),
        ("resident_a1", "community_a", 403),
        ("org_admin", "community_a", 403),
    ],
)
def test_community_scope(client, auth, world, who, community, status):
    target = getattr(world, community).public_id
    response = client.get(f"/api/v1/communities/{target}/residents", headers=auth(who))
    assert response.status_code == status, response.get_json()


def test_scope_target_that_does_not_exist_is_404(client, auth):
    response = client.get("/api/v1/communities/cm_missing/residents", headers=auth("street_admin"))
    assert response.status_code == 404


def test_street_admin_grants_roles_only_in_own_street(client, auth, world):
    newcomer = world.users["newcomer"].public_id
    ok = client.post(
        "/api/v1/memberships",
        json={
            "user_id": newcomer,
            "role": "secretary",
            "scope_type": "community",
            "scope_id": world.community_a.public_id,
        },
        headers=auth("street_admin"),
    )
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["role"] == "secretary"
    elsewhere = client.post(
        "/api/v1/memberships",
        json={
            "user_id": newcomer,
            "role": "secretary",
            "scope_type": "community",
            "scope_id": world.community_a.public_id,
        },
        headers=auth("other_street_admin"),
    )
    assert elsewhere.status_code == 403


def test_role_in_the_wrong_kind_of_scope_is_422(client, auth, world):
    response = client.post(
        "/api/v1/memberships",
        json={
            "user_id": world.users["newcomer"].public_id,
            "role": "secretary",
            "scope_type": "organization",
            "scope_id": world.organization.public_id,
        },
        headers=auth("street_admin"),
    )
    assert response.status_code == 422
    assert "scope_type" in response.get_json()["details"]


def test_no_self_grant(client, auth, world):
    response = client.post(
        "/api/v1/memberships",
        json={
            "user_id": world.users["street_admin"].public_id,
            "role": "secretary",
            "scope_type": "community",
            "scope_id": world.community_a.public_id,
        },
        headers=auth("street_admin"),
    )
    assert response.status_code == 409


def test_revoke_role(client, auth, world):
    membership_id = world.users["secretary_a"].memberships[0].public_id
    assert (
        client.delete(f"/api/v1/memberships/{membership_id}", headers=auth("other_street_admin")).status_code
        == 403
    )
    assert (
        client.delete(f"/api/v1/memberships/{membership_id}", headers=auth("street_admin")).status_code == 204
    )
    target = world.community_a.public_id
    assert (
        client.get(f"/api/v1/communities/{target}/residents", headers=auth("secretary_a")).status_code == 403
    )


def test_a_membership_is_named_by_an_opaque_id(client, auth, world):
    """A grant answers with the membership's public id (rm_ and 20 letters), which revokes it; its integer
    key, sequential and guessable, names nothing."""
    granted = client.post(
        "/api/v1/memberships",
        json={
            "user_id": world.users["newcomer"].public_id,
            "role": "proxy_agent",
            "scope_type": "community",
            "scope_id": world.community_a.public_id,
        },
        headers=auth("street_admin"),
    )
    assert granted.status_code == 201, granted.get_json()
    public_id = granted.get_json()["id"]
    assert re.fullmatch(r"rm_[0-9a-z]{20}", public_id), public_id
    membership = db.session.scalar(select(RoleMembership).where(RoleMembership.public_id == public_id))
    by_key = client.delete(f"/api/v1/memberships/{membership.id}", headers=auth("street_admin"))
    assert by_key.status_code == 404, by_key.get_json()
    by_id = client.delete(f"/api/v1/memberships/{public_id}", headers=auth("street_admin"))
    assert by_id.status_code == 204
    db.session.expire_all()
    assert db.session.get(RoleMembership, membership.id) is None


def test_the_roles_a_user_holds_name_their_memberships_by_public_id(client, auth, world):
    me = client.get("/api/v1/me", headers=auth("secretary_a")).get_json()
    assert [r["id"] for r in me["roles"]] == [m.public_id for m in world.users["secretary_a"].memberships]
    assert all(r["id"].startswith("rm_") for r in me["roles"])


@pytest.mark.parametrize("membership_id", ["rm_missing", "999999", "2147483648", "1" * 40])
def test_revoking_a_membership_that_cannot_exist_is_404(client, auth, membership_id):
    response = client.delete(f"/api/v1/memberships/{membership_id}", headers=auth("street_admin"))
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["code"] == "not_found"
    assert response.get_json()["message"] == "任职记录不存在"


def test_resident_registers_in_a_grid(client, auth, world):
    response = client.post(
        "/api/v1/me/residence", json={"grid_id": world.grid_a2.public_id}, headers=auth("newcomer")
    )
    assert response.status_code == 200
    roles = response.get_json()["roles"]
    assert roles == [
        {
            "id": roles[0]["id"],
            "role": "resident",
            "role_label": "居民",
            "scope_type": "grid",
            "scope_id": world.grid_a2.public_id,
        }
    ]
