"""Where a resident lives is theirs to register (POST /me/residence) and to remove when they move
(DELETE /me/residence/<grid_id>): the old community's secretary then no longer reads their details, and
what they ordered there stays as it was."""

from backend.catalog.service import load_catalog, shipped_catalog
from backend.db import db
from backend.notify.service import seed_templates
from backend.sla.service import seed_official_calendar

PHONE = "13800138000"


def _reveal(client, auth, who: str, subject) -> int:
    response = client.post(
        f"/api/v1/users/{subject.public_id}/reveal",
        json={"field": "phone", "reason": "联系居民核实诉求"},
        headers=auth(who),
    )
    return response.status_code


def _residents(client, auth, who: str, community) -> set[str]:
    url = f"/api/v1/communities/{community.public_id}/residents"
    response = client.get(url, query_string={"limit": 100}, headers=auth(who))
    assert response.status_code == 200, response.get_json()
    return {item["id"] for item in response.get_json()["items"]}


def test_a_resident_who_moves_removes_the_old_grid(client, auth, world):
    resident = world.users["resident_a1"]
    resident.phone = PHONE
    db.session.commit()
    headers = auth("resident_a1")
    moved = client.post("/api/v1/me/residence", json={"grid_id": world.grid_b1.public_id}, headers=headers)
    assert moved.status_code == 200
    assert _reveal(client, auth, "secretary_a", resident) == 200

    left = client.delete(f"/api/v1/me/residence/{world.grid_a1.public_id}", headers=headers)
    assert left.status_code == 204, left.get_json()
    assert left.data == b""
    roles = client.get("/api/v1/me", headers=headers).get_json()["roles"]
    assert [(r["role"], r["scope_id"]) for r in roles] == [("resident", world.grid_b1.public_id)]
    # The old community's secretary reads them no more; the new one's does.
    assert _reveal(client, auth, "secretary_a", resident) == 403
    assert _reveal(client, auth, "secretary_b", resident) == 200
    assert resident.public_id not in _residents(client, auth, "secretary_a", world.community_a)
    assert resident.public_id in _residents(client, auth, "secretary_b", world.community_b)


def test_removing_a_grid_one_is_not_registered_in_is_404(client, auth, world):
    headers = auth("resident_a1")
    for grid_id in (world.grid_a2.public_id, "gd_missing", "x" * 40):
        response = client.delete(f"/api/v1/me/residence/{grid_id}", headers=headers)
        assert response.status_code == 404, (grid_id, response.get_json())
        assert response.get_json()["message"] == "未登记居住在该网格"
    # Another role held in the grid is no residence: a grid worker stays one.
    response = client.delete(
        f"/api/v1/me/residence/{world.grid_a1.public_id}", headers=auth("grid_worker_a1")
    )
    assert response.status_code == 404
    me = client.get("/api/v1/me", headers=auth("grid_worker_a1")).get_json()
    assert [r["role"] for r in me["roles"]] == ["grid_worker"]
    # Removed once, it is gone: removing it again names nothing.
    url = f"/api/v1/me/residence/{world.grid_a1.public_id}"
    assert client.delete(url, headers=headers).status_code == 204
    assert client.delete(url, headers=headers).status_code == 404


def test_orders_placed_before_moving_stay_as_they_were(client, auth, world):
    seed_official_calendar()
    seed_templates()
    load_catalog(shipped_catalog())
    db.session.commit()
    headers = auth("resident_a1")
    order = client.post(
        "/api/v1/orders",
        json={
            "category": "companionship",
            "description": "独居老人，希望每周有人上门陪聊",
            "answers": {"frequency": "weekly"},
            "address": "阳光社区3号楼2单元501",
            "contact_name": "王秀英",
            "contact_phone": "13812348000",
        },
        headers=headers,
    )
    assert order.status_code == 201, order.get_json()
    client.post("/api/v1/me/residence", json={"grid_id": world.grid_b1.public_id}, headers=headers)
    assert (
        client.delete(f"/api/v1/me/residence/{world.grid_a1.public_id}", headers=headers).status_code == 204
    )
    mine = client.get(f"/api/v1/orders/{order.get_json()['id']}", headers=headers)
    assert mine.status_code == 200
    assert mine.get_json()["state"] == "submitted"
    assert mine.get_json()["community_id"] == world.community_a.public_id
    listed = client.get("/api/v1/orders", headers=headers).get_json()["items"]
    assert [o["id"] for o in listed] == [order.get_json()["id"]]
    # The old community's secretary still handles the order placed there.
    board = client.get("/api/v1/orders/board", headers=auth("secretary_a")).get_json()["items"]
    assert order.get_json()["id"] in [o["id"] for o in board]
