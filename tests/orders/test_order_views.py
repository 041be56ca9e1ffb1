"""The order lists build their JSON by hand for speed; it must be exactly what their documented schema
(OrderSummarySchema) makes of the same orders, for orders in every kind of state."""

from sqlalchemy import select

from backend.db import db
from backend.orders.models import Order
from backend.orders.schemas import OrderSummarySchema


def _documented(public_ids: list[str]) -> list[dict]:
    db.session.expire_all()
    orders = {
        o.public_id: o for o in db.session.scalars(select(Order).where(Order.public_id.in_(public_ids)))
    }
    return [OrderSummarySchema().dump(orders[p]) for p in public_ids]


def _orders_in_many_states(place, act, world) -> None:
    place()  # submitted
    place()  # a likely duplicate of the first
    place(category="emergency_help", answers={"situation": "fall"}, description="老人在家中跌倒")  # urgent
    accepted = act("secretary_a", place(), "accept")  # with a deadline
    pooled = act(
        "secretary_a",
        place(),
        "dispatch",
        pool=True,
        organization_ids=[world.organization.public_id, world.other_organization.public_id],
    )
    taken = act(
        "org_admin",
        act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id]),
        "take",
    )
    act("org_admin", taken, "start")
    act("org_admin", taken, "request-extension", amount=2, unit="working_days", reason="需要采购配件")
    assert accepted["due_at"] and pooled["pool"]


def test_every_list_says_what_the_summary_schema_says(client, auth, place, act, world):
    _orders_in_many_states(place, act, world)
    pages = {
        "resident": client.get("/api/v1/orders", headers=auth("resident_a1")),
        "board": client.get("/api/v1/orders/board?needs_action=false", headers=auth("secretary_a")),
        "organization": client.get(
            f"/api/v1/organizations/{world.organization.public_id}/orders", headers=auth("org_admin")
        ),
        "grid": client.get(f"/api/v1/grids/{world.grid_a1.public_id}/orders", headers=auth("grid_worker_a1")),
    }
    for name, response in pages.items():
        assert response.status_code == 200, (name, response.get_json())
        items = response.get_json()["items"]
        assert items, name
        assert items == _documented([i["id"] for i in items]), name
    board = pages["board"].get_json()["items"]
    assert {o["state"] for o in board} >= {"submitted", "accepted", "dispatched", "in_progress"}
    assert any(o["possible_duplicate"] for o in board) and any(o["extension_requested"] for o in board)
    assert any(o["pool"] for o in board) and any(o["due_at"] is None for o in board)


def test_a_page_boundary_loses_and_repeats_nothing(client, auth, place, act, world):
    _orders_in_many_states(place, act, world)
    seen, cursor = [], None
    while True:
        url = "/api/v1/orders/board?needs_action=false&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth("secretary_a")).get_json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = client.get("/api/v1/orders/board?needs_action=false", headers=auth("secretary_a")).get_json()
    assert seen == [o["id"] for o in everything["items"]] and len(seen) == len(set(seen)) == 6


def test_one_order_says_what_the_order_schema_says_to_every_viewer(client, auth, place, act, world):
    from backend.orders import views
    from backend.orders.schemas import OrderSchema

    _orders_in_many_states(place, act, world)
    closed = act(
        "org_admin",
        act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id]),
        "take",
    )
    act("org_admin", closed, "assign", volunteer_ids=[world.volunteer_entry.public_id])
    act("org_admin", closed, "resolve", note="已办结")
    act("resident_a1", closed, "confirm", level=2, tags=["迟到"], comment="来晚了")
    db.session.expire_all()
    orders = list(db.session.scalars(select(Order).order_by(Order.id)))
    assert len(orders) == 7
    seen = []
    for person in ("resident_a1", "secretary_a", "street_admin", "org_admin", "volunteer"):
        for order in orders:
            response = client.get(f"/api/v1/orders/{order.public_id}", headers=auth(person))
            if response.status_code == 404:
                continue
            db.session.expire_all()
            order = db.session.get(Order, order.id)
            expected = OrderSchema().dump(views.with_view(order, world.users[person]))
            assert response.get_json() == expected, (person, order.state)
            seen.append(expected)
    assert len(seen) >= 20
    assert any(d["contact_masked"] for d in seen) and any(not d["contact_masked"] for d in seen)
    assert any(d["rating"] for d in seen) and any(d["volunteers"] for d in seen)
    assert any(d["offered_to"] for d in seen) and any(len(d["timeline"]) > 4 for d in seen)


def test_a_secretary_finds_an_order_by_the_number_a_resident_reads_out(client, auth, place, act, world):
    def board(person: str, **query) -> list[str]:
        response = client.get("/api/v1/orders/board", query_string=query, headers=auth(person))
        assert response.status_code == 200, response.get_json()
        return [o["number"] for o in response.get_json()["items"]]

    _orders_in_many_states(place, act, world)
    taken = act(
        "org_admin",
        act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id]),
        "take",
    )
    number = taken["number"]
    # Found in any state: a taken order needs no action and is not on the board by default.
    assert number not in board("secretary_a")
    assert board("secretary_a", number=number) == [number]
    assert board("street_admin", number=number) == [number]
    # Another community's secretary, a wrong day, or an id too large for one: nothing.
    assert board("secretary_b", number=number) == []
    assert board("secretary_a", number="19990101" + number[8:]) == []
    assert board("secretary_a", number=number[:8] + "9999999999") == []
    for bad in ("12345", "2026120100000001x", "2026120100000001" + "000"):
        response = client.get(
            "/api/v1/orders/board", query_string={"number": bad}, headers=auth("secretary_a")
        )
        assert response.status_code == 422 and response.get_json()["details"] == {
            "number": ["工单号为 16 至 18 位数字"]
        }


def test_a_grid_worker_follows_their_grids_orders(client, auth, place, act, world):
    mine = place("resident_a1")
    entered = place("grid_worker_a1", resident_id=world.users["resident_a1"].public_id)
    accepted = act("secretary_a", place("resident_a1"), "accept")
    url = f"/api/v1/grids/{world.grid_a1.public_id}/orders"

    def listed(person: str, **query) -> list[str]:
        response = client.get(url, query_string=query, headers=auth(person))
        assert response.status_code == 200, response.get_json()
        return [o["id"] for o in response.get_json()["items"]]

    newest_first = [accepted["id"], entered["id"], mine["id"]]
    assert listed("grid_worker_a1") == listed("secretary_a") == listed("street_admin") == newest_first
    assert listed("grid_worker_a1", state="accepted") == [accepted["id"]]
    first = client.get(url, query_string={"limit": 2}, headers=auth("grid_worker_a1")).get_json()
    assert listed("grid_worker_a1", limit=2, cursor=first["next_cursor"]) == [mine["id"]]
    # Another grid's worker, another community's secretary, another street, a resident: refused.
    for person in ("secretary_b", "other_street_admin", "resident_a1", "org_admin"):
        assert client.get(url, headers=auth(person)).status_code == 403, person
    other_grid = f"/api/v1/grids/{world.grid_a2.public_id}/orders"
    assert client.get(other_grid, headers=auth("grid_worker_a1")).status_code == 403
    assert client.get("/api/v1/grids/gr_nosuchgrid/orders", headers=auth("grid_worker_a1")).status_code == 404
