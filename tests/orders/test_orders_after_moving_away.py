"""What a resident ordered stays theirs after they remove their only residence (DELETE /me/residence): owning
the order, not living in a grid now, is what lets them list it, confirm, rate, reopen or cancel it. Anyone
else is refused as before: 409 with their own allowed actions where they may see the order, 404 where not."""

from datetime import timedelta

import time_machine
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.orders import service
from backend.orders.models import Order, Rating
from tests.orders.conftest import ORDER


def _resolved(place, act, world) -> dict:
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    act("org_admin", order, "take")
    return act("org_admin", order, "resolve", note="已上门陪伴")


OWNER_ACTIONS = (("confirm", {"level": 5}), ("rate", {"level": 5}), ("reopen", {"reason": "重办"}))


def _row(order: dict) -> Order:
    db.session.expire_all()
    return db.session.scalar(select(Order).where(Order.public_id == order["id"]))


def _move_away(client, auth, world) -> None:
    headers = auth("resident_a1")
    left = client.delete(f"/api/v1/me/residence/{world.grid_a1.public_id}", headers=headers)
    assert left.status_code == 204, left.get_json()
    assert client.get("/api/v1/me", headers=headers).get_json()["roles"] == []


def test_a_resident_without_a_residence_lists_disputes_confirms_rates_and_cancels_their_orders(
    client, auth, place, act, world
):
    disputed, confirmed, auto_closed = (_resolved(place, act, world) for _ in range(3))
    waiting = place()
    row = _row(auto_closed)
    with time_machine.travel(clock.now() + timedelta(days=8), tick=False):
        assert service.auto_close(order_id=row.id, resolved_at=row.resolved_at.isoformat())
        db.session.commit()
    _move_away(client, auth, world)

    listed = client.get("/api/v1/orders", headers=auth("resident_a1"))
    assert listed.status_code == 200, listed.get_json()
    mine = [o["id"] for o in listed.get_json()["items"]]
    assert mine == [o["id"] for o in (waiting, auto_closed, confirmed, disputed)]
    page = client.get(f"/api/v1/orders/{disputed['id']}", headers=auth("resident_a1")).get_json()
    assert page["allowed_actions"] == ["confirm", "reopen"]

    reopened = act("resident_a1", disputed, "reopen", reason="还是没人来陪")
    assert reopened["state"] == "dispatched" and _row(disputed).reopen_count == 1
    closed = act("resident_a1", confirmed, "confirm", level=5, comment="很贴心")
    assert closed["state"] == "closed" and closed["rating"]["level"] == 5
    rated = act("resident_a1", auto_closed, "rate", level=4)
    assert rated["rating"]["level"] == 4
    assert act("resident_a1", waiting, "cancel", reason="已搬走")["state"] == "cancelled"
    # Placing a new order still needs somewhere to live.
    placing = client.post("/api/v1/orders", json=ORDER, headers=auth("resident_a1"))
    assert (placing.status_code, placing.get_json()["code"]) == (403, "residence_required")


def test_someone_who_never_ordered_lists_nothing(client, auth, place):
    place()
    for person in ("newcomer", "org_admin", "secretary_a", "resident_b1"):
        listed = client.get("/api/v1/orders", headers=auth(person))
        assert listed.status_code == 200, (person, listed.get_json())
        assert listed.get_json() == {"items": [], "next_cursor": None}, person


def test_only_the_orders_resident_confirms_rates_or_reopens_it(client, auth, place, act, world):
    order = _resolved(place, act, world)
    _move_away(client, auth, world)
    # Those who see the order are told what they may do with it instead (the state machine's 409): nothing,
    # a resolved order waiting on its resident.
    for person in ("secretary_a", "street_admin", "org_admin", "grid_worker_a1"):
        for action, body in OWNER_ACTIONS:
            refused = act(person, order, action, expect=409, **body)
            assert refused["code"] == "illegal_action", (person, action)
            assert refused["details"] == {
                "state": "resolved",
                "state_label": "已回单",
                "allowed_actions": [],
            }, (person, action)
    # Those who do not see it learn nothing of it.
    for person in ("resident_b1", "secretary_b", "other_org_admin", "other_street_admin", "newcomer"):
        for action, body in OWNER_ACTIONS:
            assert act(person, order, action, expect=404, **body)["code"] == "not_found", (person, action)
        assert act(person, order, "cancel", expect=404, reason="不要了")["code"] == "not_found", person
    row = _row(order)
    assert (row.state, row.reopen_count) == ("resolved", 0)
    assert db.session.get(Rating, row.id) is None


def test_the_api_documents_who_acts_on_their_own_orders(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    own = "any signed-in user; own orders only"
    assert paths["/api/v1/orders"]["get"]["x-access"] == own
    for action in ("confirm", "rate", "reopen"):
        assert paths[f"/api/v1/orders/{{order_id}}/{action}"]["post"]["x-access"] == own, action
    assert paths["/api/v1/orders/{order_id}/cancel"]["post"]["x-access"] == (
        "any signed-in user; own orders, or as the order's community secretary or street admin"
    )
