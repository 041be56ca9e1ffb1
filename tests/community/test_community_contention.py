"""A name added twice at the same instant (a double tap on 新建): one community or grid is made, and the other
request gets the same 422 a later duplicate gets, not a failed insert."""

import requests
from sqlalchemy import func, select

from backend.community.models import Community, Grid
from backend.db import db
from tests.factories import send_at_once

TAPS = 6
ROUNDS = 3


def _at_once(url: str, body: dict, headers: dict) -> list[requests.Response]:
    return send_at_once([(url, body, headers)] * TAPS)


def test_a_grid_added_twice_at_once_is_made_once(auth, world, server):
    url = f"{server}/api/v1/communities/{world.community_a.public_id}/grids"
    for n in range(ROUNDS):
        responses = _at_once(url, {"name": f"第{n + 3}网格"}, auth("secretary_a"))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [422] * (TAPS - 1), [r.json() for r in responses]
        refused = [r.json() for r in responses if r.status_code == 422]
        assert all(r["details"] == {"name": ["该社区已有同名网格"]} for r in refused)
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).where(Grid.name == f"第{n + 3}网格")) == 1


def test_a_community_added_twice_at_once_is_made_once(auth, world, server):
    for n in range(ROUNDS):
        body = {"street_id": world.street.public_id, "name": f"新建社区{n}"}
        responses = _at_once(f"{server}/api/v1/communities", body, auth("street_admin"))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [422] * (TAPS - 1), [r.json() for r in responses]
        refused = [r.json() for r in responses if r.status_code == 422]
        assert all(r["details"] == {"name": ["该街道已有同名社区"]} for r in refused)
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).where(Community.name == f"新建社区{n}")) == 1
