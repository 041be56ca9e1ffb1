"""A street keeps at least one street admin: revoking the last street-admin membership of a street is refused
(409), also when two admins revoke each other at the same moment, which would otherwise leave a street
nobody can administer (nobody could grant the role again but another street admin of it)."""

import pytest
from sqlalchemy import select

from backend.auth import service
from backend.auth.models import RoleMembership, User
from backend.auth.principals import Membership, Principal
from backend.auth.roles import Role, ScopeType
from backend.db import db
from backend.errors import Conflict
from tests.factories import login_headers, make_member, send_at_once

ROUNDS = 4


def _admin_memberships(street_id: int) -> list[RoleMembership]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(RoleMembership).where(
                RoleMembership.role == Role.STREET_ADMIN,
                RoleMembership.scope_type == ScopeType.STREET,
                RoleMembership.scope_id == street_id,
            )
        )
    )


def _second_admin(world, n: int = 0):
    return make_member(Role.STREET_ADMIN, ScopeType.STREET, world.street.id, openid=f"openid-admin-{n}")


def test_an_admin_revokes_another_while_one_remains(client, auth, world):
    second = _second_admin(world)
    url = f"/api/v1/memberships/{second.memberships[0].public_id}"
    assert client.delete(url, headers=auth("street_admin")).status_code == 204
    assert [m.user_id for m in _admin_memberships(world.street.id)] == [world.users["street_admin"].id]


def _as_read_a_moment_ago(user) -> Principal:
    """The user as their request read them before another request committed (what g.user and the
    principal hold while a concurrent revoke commits)."""
    memberships = tuple(Membership(m.id, m.role, m.scope_type, m.scope_id) for m in user.memberships)
    return Principal(user.id, user.public_id, "ses_x", memberships)


def test_the_last_street_admin_membership_is_not_revoked(client, fake_wechat, world):
    """Two admins revoking each other, one after the other as a race lays them out: the second revoke,
    authorized by what its request read before the first committed, would take the street's last admin
    and is refused; the street keeps that admin."""
    admin = world.users["street_admin"]
    second = _second_admin(world)
    admin_read = _as_read_a_moment_ago(admin)
    url = f"/api/v1/memberships/{admin.memberships[0].public_id}"
    revoked = client.delete(url, headers=login_headers(client, fake_wechat, second))
    assert revoked.status_code == 204, revoked.get_json()
    with pytest.raises(Conflict) as refused:
        service.revoke_role(actor=admin_read, membership_public_id=second.memberships[0].public_id)
    assert refused.value.code == "last_street_admin"
    assert refused.value.message == "不能撤销本街道最后一位街道管理员，请先授予他人街道管理员"
    db.session.rollback()
    assert [m.user_id for m in _admin_memberships(world.street.id)] == [second.id]


def test_a_disabled_admin_does_not_count_as_one_left(world):
    """An admin whose account is disabled cannot sign in: a street whose only other admin is disabled would
    be left with nobody to administer it."""
    admin = world.users["street_admin"]
    second = _second_admin(world)
    disabled = _second_admin(world, 1)
    disabled.is_active = False
    db.session.commit()
    admin_read = _as_read_a_moment_ago(admin)
    db.session.delete(admin.memberships[0])
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        service.revoke_role(actor=admin_read, membership_public_id=second.memberships[0].public_id)
    assert refused.value.code == "last_street_admin"
    db.session.rollback()
    assert {m.user_id for m in _admin_memberships(world.street.id)} == {second.id, disabled.id}


def test_two_admins_revoking_each_other_at_once_leave_one(client, fake_wechat, world, server):
    """Each of two admins revokes the other at the same instant: one revoke stands, the other is refused,
    and the street keeps exactly one admin. PostgreSQL: the street's row is locked while the admins left
    are counted."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer in at a time; the race is PostgreSQL's")
    first = world.users["street_admin"]
    for n in range(ROUNDS):
        second = _second_admin(world, n)
        mine, theirs = first.memberships[0].public_id, second.memberships[0].public_id
        requests_to_send = [
            (f"{server}/api/v1/memberships/{theirs}", None, login_headers(client, fake_wechat, first)),
            (f"{server}/api/v1/memberships/{mine}", None, login_headers(client, fake_wechat, second)),
        ]
        responses = send_at_once(requests_to_send, method="DELETE")
        codes = sorted(r.status_code for r in responses)
        # The other is refused: 409 when its request read its admin's role before the first revoke
        # committed, 403 when it read it after (it holds none any more).
        assert codes in ([204, 403], [204, 409]), [r.text for r in responses]
        refused = next(r.json() for r in responses if r.status_code != 204)
        assert refused["code"] == ("last_street_admin" if codes[1] == 409 else "forbidden")
        left = _admin_memberships(world.street.id)
        assert len(left) == 1
        # Whoever is left goes on as the street's admin, and the next round races them.
        first = db.session.get(User, left[0].user_id)
