"""A role granted twice at the same instant (a double tap on 登记, two admins granting one role) is granted
once, and both requests succeed: the second finds the first's membership instead of failing on it."""

import requests
from sqlalchemy import func, select

from backend.auth.models import RoleMembership
from backend.db import db
from tests.factories import login_headers, make_user, send_at_once

TAPS = 6
ROUNDS = 4


def _at_once(url: str, body: dict, headers: dict) -> list[requests.Response]:
    return send_at_once([(url, body, headers)] * TAPS)


def _memberships(user_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).where(RoleMembership.user_id == user_id))


def test_registering_a_residence_at_once_makes_one_membership(client, fake_wechat, world, server):
    for n in range(ROUNDS):
        person = make_user(openid=f"openid-tapper-{n}")
        db.session.commit()
        headers = login_headers(client, fake_wechat, person)
        body = {"grid_id": world.grid_a2.public_id}
        responses = _at_once(f"{server}/api/v1/me/residence", body, headers)
        assert [r.status_code for r in responses] == [200] * TAPS, [r.json() for r in responses]
        assert all(len(r.json()["roles"]) == 1 for r in responses)
        assert _memberships(person.id) == 1


def test_granting_a_role_at_once_makes_one_membership(client, auth, world, server):
    for n in range(ROUNDS):
        person = make_user(openid=f"openid-granted-{n}")
        db.session.commit()
        body = {
            "user_id": person.public_id,
            "role": "proxy_agent",
            "scope_type": "community",
            "scope_id": world.community_a.public_id,
        }
        responses = _at_once(f"{server}/api/v1/memberships", body, auth("street_admin"))
        assert [r.status_code for r in responses] == [201] * TAPS, [r.json() for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert _memberships(person.id) == 1
