"""Builders for test data, through the same models and services the app uses."""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from backend.auth.models import User
from backend.auth.roles import Role, ScopeType
from backend.auth.service import grant_role
from backend.community.models import Community, Grid, Street
from backend.db import db
from backend.organizations.models import Organization, OrganizationCategory

_seq = itertools.count(1)


def make_user(openid: str | None = None, **kwargs) -> User:
    user = User(openid=openid or f"test-openid-{next(_seq)}", **kwargs)
    db.session.add(user)
    db.session.flush()
    return user


def make_member(role: Role, scope_type: ScopeType, scope_id: int, **kwargs) -> User:
    user = make_user(**kwargs)
    grant_role(user=user, role=role, scope_type=scope_type, scope_id=scope_id)
    db.session.commit()
    return user


def login_headers(client, fake_wechat, user: User) -> dict:
    """Sign the user in through the fake WeChat server and return the Authorization header."""
    code, _ = fake_wechat.state.issue_login_code(openid=user.openid)
    response = client.post("/api/v1/auth/login", json={"code": code})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": "Bearer " + response.get_json()["access_token"]}


@dataclass
class World:
    """Two streets' worth of scope: street S (communities A and B, grids a1, a2, b1), street T, and people."""

    street: Street
    other_street: Street
    community_a: Community
    community_b: Community
    grid_a1: Grid
    grid_a2: Grid
    grid_b1: Grid
    organization: Organization
    other_organization: Organization
    users: dict[str, User] = field(default_factory=dict)


def build_world() -> World:
    street = Street(name="幸福街道")
    other_street = Street(name="平安街道")
    db.session.add_all([street, other_street])
    db.session.flush()
    community_a = Community(street=street, name="阳光社区")
    community_b = Community(street=street, name="和平社区")
    community_t = Community(street=other_street, name="远方社区")
    db.session.add_all([community_a, community_b, community_t])
    db.session.flush()
    grid_a1 = Grid(community=community_a, name="第1网格")
    grid_a2 = Grid(community=community_a, name="第2网格")
    grid_b1 = Grid(community=community_b, name="第1网格")
    db.session.add_all([grid_a1, grid_a2, grid_b1])
    organization = Organization(
        street_id=street.id,
        name="邻里守望志愿服务队",
        communities=[community_a],
        categories=[OrganizationCategory(category_code="companionship")],
    )
    other_organization = Organization(street_id=street.id, name="安居维修服务社", communities=[community_b])
    db.session.add_all([organization, other_organization])
    db.session.flush()
    world = World(
        street,
        other_street,
        community_a,
        community_b,
        grid_a1,
        grid_a2,
        grid_b1,
        organization,
        other_organization,
    )
    people = {
        "resident_a1": (Role.RESIDENT, ScopeType.GRID, grid_a1.id),
        "resident_b1": (Role.RESIDENT, ScopeType.GRID, grid_b1.id),
        "grid_worker_a1": (Role.GRID_WORKER, ScopeType.GRID, grid_a1.id),
        "secretary_a": (Role.SECRETARY, ScopeType.COMMUNITY, community_a.id),
        "secretary_b": (Role.SECRETARY, ScopeType.COMMUNITY, community_b.id),
        "org_admin": (Role.ORG_ADMIN, ScopeType.ORGANIZATION, organization.id),
        "other_org_admin": (Role.ORG_ADMIN, ScopeType.ORGANIZATION, other_organization.id),
        "volunteer": (Role.VOLUNTEER, ScopeType.ORGANIZATION, organization.id),
        "street_admin": (Role.STREET_ADMIN, ScopeType.STREET, street.id),
        "other_street_admin": (Role.STREET_ADMIN, ScopeType.STREET, other_street.id),
    }
    for name, (role, scope_type, scope_id) in people.items():
        world.users[name] = make_member(role, scope_type, scope_id, openid=f"openid-{name}", nickname=name)
    world.users["newcomer"] = make_user(openid="openid-newcomer", nickname="newcomer")
    db.session.commit()
    return world


def send_at_once(
    requests_to_send: list[tuple[str, dict, dict]], timeout: float = 60, method: str = "POST"
) -> list[requests.Response]:
    """Send each (url, body, headers) from its own thread and session, all released at the same instant
    (to the ``server`` fixture: real concurrent requests); the responses in the same order."""
    barrier = threading.Barrier(len(requests_to_send))

    def one(request):
        url, body, headers = request
        with requests.Session() as session:
            barrier.wait()
            return session.request(method, url, json=body, headers=headers, timeout=timeout)

    with ThreadPoolExecutor(max_workers=len(requests_to_send)) as pool:
        return list(pool.map(one, requests_to_send))


@contextmanager
def rotating_keys(app):
    """The app encrypting under a new key while the old one still decrypts (SANDAN_ENCRYPTION_KEYS="new,old",
    as during `sandan rotate-keys`); yields ``drop_old()``, which leaves the new key alone. The test's keys
    come back afterwards."""
    from cryptography.fernet import Fernet

    from backend.privacy import crypto

    old_keys, hmac_key = app.config["ENCRYPTION_KEYS"], app.config["HMAC_KEY"]
    new_key = Fernet.generate_key().decode()
    crypto.configure(f"{new_key},{old_keys}", hmac_key)
    try:
        yield lambda: crypto.configure(new_key, hmac_key)
    finally:
        crypto.configure(old_keys, hmac_key)
