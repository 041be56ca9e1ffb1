"""A name added twice at the same instant (a double tap on 新建): one community or grid is made, and the other
request gets the same 422 a later duplicate gets, not a failed insert."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from backend.community.models import Community, Grid
from backend.db import db

TAPS = 6
ROUNDS = 3


@pytest.fixture
def server(app):
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


def _at_once(url: str, body: dict, headers: dict) -> list[requests.Response]:
    barrier = threading.Barrier(TAPS)

    def one(_):
        with requests.Session() as session:
            barrier.wait()
            return session.post(url, json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=TAPS) as pool:
        return list(pool.map(one, range(TAPS)))


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
