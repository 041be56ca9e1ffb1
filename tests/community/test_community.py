"""Streets, communities and grids."""


def test_list_communities_with_grids(client, auth, world):
    body = client.get(
        "/api/v1/communities", query_string={"street_id": world.street.public_id}, headers=auth("resident_a1")
    ).get_json()
    assert [c["name"] for c in body["items"]] == ["阳光社区", "和平社区"]
    assert [g["name"] for g in body["items"][0]["grids"]] == ["第1网格", "第2网格"]


def test_unknown_street_filter_is_404(client, auth):
    response = client.get(
        "/api/v1/communities", query_string={"street_id": "st_nope"}, headers=auth("resident_a1")
    )
    assert response.status_code == 404


def test_street_admin_creates_a_community_in_own_street_only(client, auth, world):
    ok = client.post(
        "/api/v1/communities",
        json={"street_id": world.street.public_id, "name": "东湖社区"},
        headers=auth("street_admin"),
    )
    assert ok.status_code == 201
    assert ok.get_json()["street_id"] == world.street.public_id
    duplicate = client.post(
        "/api/v1/communities",
        json={"street_id": world.street.public_id, "name": "东湖社区"},
        headers=auth("street_admin"),
    )
    assert duplicate.status_code == 422
    assert "name" in duplicate.get_json()["details"]
    # The same name with spaces around it is the same name; spaces alone are none.
    for name in (" 东湖社区 ", "\u3000 "):
        refused = client.post(
            "/api/v1/communities",
            json={"street_id": world.street.public_id, "name": name},
            headers=auth("street_admin"),
        )
        assert refused.status_code == 422 and "name" in refused.get_json()["details"], name
    foreign = client.post(
        "/api/v1/communities",
        json={"street_id": world.other_street.public_id, "name": "X"},
        headers=auth("street_admin"),
    )
    assert foreign.status_code == 403


def test_secretary_creates_grids_in_own_community(client, auth, world):
    ok = client.post(
        f"/api/v1/communities/{world.community_a.public_id}/grids",
        json={"name": "第3网格"},
        headers=auth("secretary_a"),
    )
    assert ok.status_code == 201
    denied = client.post(
        f"/api/v1/communities/{world.community_b.public_id}/grids",
        json={"name": "第9网格"},
        headers=auth("secretary_a"),
    )
    assert denied.status_code == 403


def test_residents_page_by_keyset(client, auth, world):
    from backend.auth.roles import Role, ScopeType
    from tests.factories import make_member

    for i in range(4):
        make_member(Role.RESIDENT, ScopeType.GRID, world.grid_a2.id, nickname=f"r{i}")
    headers = auth("secretary_a")
    url = f"/api/v1/communities/{world.community_a.public_id}/residents"
    first = client.get(url, query_string={"limit": 3}, headers=headers).get_json()
    second = client.get(
        url, query_string={"limit": 3, "cursor": first["next_cursor"]}, headers=headers
    ).get_json()
    assert len(first["items"]) == 3
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert len(set(ids)) == 5


def test_bad_cursor_and_limit_are_422(client, auth, world):
    url = f"/api/v1/communities/{world.community_a.public_id}/residents"
    assert client.get(url, query_string={"cursor": "@@@"}, headers=auth("secretary_a")).status_code == 422
    assert client.get(url, query_string={"limit": 0}, headers=auth("secretary_a")).status_code == 422


def test_a_cursor_past_any_id_is_422_not_a_database_error(client, auth, world):
    import base64

    url = f"/api/v1/communities/{world.community_a.public_id}/residents"
    for key in (2**31, 10**30):
        cursor = base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")
        response = client.get(url, query_string={"cursor": cursor}, headers=auth("secretary_a"))
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["details"] == {"cursor": ["无效的游标"]}


def test_an_id_with_a_nul_character_names_nothing(client, auth):
    # PostgreSQL's text cannot hold NUL: such an id is no resource (404), not a lookup failing in PostgreSQL.
    for url, person in (
        ("/api/v1/communities/cm_%00", "resident_a1"),
        ("/api/v1/communities/cm_%00/residents", "secretary_a"),
        ("/api/v1/errands/er_%00", "resident_a1"),
        ("/api/v1/appointments/ap_%00", "resident_a1"),
    ):
        response = client.get(url, headers=auth(person))
        assert response.status_code == 404, (url, response.get_json())
        assert response.get_json()["code"] == "not_found"


def test_secretaries_list_their_communitys_proxy_agents(client, auth, world):
    from backend.auth.roles import Role, ScopeType
    from tests.factories import make_member

    agent = make_member(Role.PROXY_AGENT, ScopeType.COMMUNITY, world.community_a.id, real_name="黄代办")
    url = f"/api/v1/communities/{world.community_a.public_id}/agents"
    response = client.get(url, headers=auth("secretary_a"))
    assert response.status_code == 200
    assert response.get_json()["items"] == [{"id": agent.public_id, "name": "黄代办"}]
    assert client.get(url, headers=auth("secretary_b")).status_code == 403
    assert client.get(url, headers=auth("resident_a1")).status_code == 403


def test_a_grid_worker_lists_the_residents_of_their_own_grid(client, auth, world):
    """代录 needs the resident's id, and a grid worker saw no list of residents at all (only secretaries and
    street admins had one, by community): they list their own grid's, phones masked, and no other grid's."""
    from backend.auth.roles import Role, ScopeType
    from tests.factories import make_member

    make_member(Role.RESIDENT, ScopeType.GRID, world.grid_a2.id, nickname="next door")
    own = client.get(f"/api/v1/grids/{world.grid_a1.public_id}/residents", headers=auth("grid_worker_a1"))
    assert own.status_code == 200, own.get_json()
    [resident] = own.get_json()["items"]
    assert resident["id"] == world.users["resident_a1"].public_id
    assert resident["grid_id"] == world.grid_a1.public_id
    assert own.get_json()["next_cursor"] is None
    other = client.get(f"/api/v1/grids/{world.grid_a2.public_id}/residents", headers=auth("grid_worker_a1"))
    assert other.status_code == 403
    # The community's secretary and the street's admin list any grid of theirs; others none.
    url = f"/api/v1/grids/{world.grid_a2.public_id}/residents"
    assert [r["nickname"] for r in client.get(url, headers=auth("secretary_a")).get_json()["items"]] == [
        "next door"
    ]
    assert client.get(url, headers=auth("street_admin")).status_code == 200
    for person in ("secretary_b", "other_street_admin", "resident_a1"):
        assert client.get(url, headers=auth(person)).status_code == 403, person
    assert client.get("/api/v1/grids/gd_nope/residents", headers=auth("street_admin")).status_code == 404
    bad = client.get(url, query_string={"cursor": "@@@"}, headers=auth("secretary_a"))
    assert bad.status_code == 422 and bad.get_json()["details"] == {"cursor": ["无效的游标"]}


def test_a_resident_registered_in_two_grids_is_listed_with_the_grid_listed(client, auth, world):
    """Moving house: registered in the new grid before leaving the old, in another community. Each list shows
    the resident with its own grid, and a page of residents reads their grids at once."""
    from sqlalchemy import event

    from backend.auth.roles import Role, ScopeType
    from backend.auth.service import grant_role
    from backend.db import db
    from tests.factories import make_member

    mover = world.users["resident_a1"]
    grant_role(user=mover, role=Role.RESIDENT, scope_type=ScopeType.GRID, scope_id=world.grid_b1.id)
    for n in range(6):
        make_member(Role.RESIDENT, ScopeType.GRID, world.grid_b1.id, nickname=f"邻居{n}")
    db.session.commit()

    def grids_listed(url: str, person: str) -> dict:
        response = client.get(url, headers=auth(person))
        assert response.status_code == 200, response.get_json()
        return {r["id"]: r["grid_id"] for r in response.get_json()["items"]}

    in_a = grids_listed(f"/api/v1/communities/{world.community_a.public_id}/residents", "secretary_a")
    assert in_a[mover.public_id] == world.grid_a1.public_id
    auth("secretary_b")  # signed in before counting
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        in_b = grids_listed(f"/api/v1/grids/{world.grid_b1.public_id}/residents", "secretary_b")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert in_b[mover.public_id] == world.grid_b1.public_id and len(in_b) == 8
    assert len(statements) <= 6, statements
