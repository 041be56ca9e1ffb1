"""The board's counts come from order_state_counts, kept by triggers: after any sequence of actions they
equal counting the orders themselves, and changes in opposite directions at once never deadlock."""

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select, update

from backend.db import db
from backend.orders.models import Order, OrderStateCount


def _kept() -> dict[tuple[int, str], int]:
    rows = db.session.execute(
        select(OrderStateCount.community_id, OrderStateCount.state, OrderStateCount.orders)
    )
    return {(c, s): n for c, s, n in rows if n}


def _counted() -> dict[tuple[int, str], int]:
    rows = db.session.execute(
        select(Order.community_id, Order.state, func.count()).group_by(Order.community_id, Order.state)
    )
    return {(c, s): n for c, s, n in rows}


def test_the_counts_follow_every_action(place, act, world, client, auth):
    org = [world.organization.public_id]
    steps = []

    def check(what: str) -> None:
        db.session.expire_all()
        steps.append(what)
        assert _kept() == _counted(), steps

    first, second, third = place(), place(), place()
    check("placed")
    act("secretary_a", second, "reject", reason="不属于服务范围")
    act("resident_a1", third, "cancel", reason="不需要了")
    check("rejected and cancelled")
    order = act("secretary_a", first, "dispatch", organization_ids=org)
    act("org_admin", order, "return", reason="人手不足")
    check("returned")
    act("secretary_a", order, "dispatch", organization_ids=org)
    act("org_admin", order, "take")
    act("org_admin", order, "start")
    act("org_admin", order, "suspend", reason="等居民补充材料")
    check("suspended")
    act("org_admin", order, "resume")
    act("org_admin", order, "resolve", note="已修好")
    act("resident_a1", order, "reopen", reason="还是漏水")
    check("reopened")
    act("org_admin", order, "take")
    act("org_admin", order, "resolve", note="换了新龙头")
    act("resident_a1", order, "confirm", level=5)
    check("closed")
    other = place("resident_b1")
    check("another community")
    assert (
        client.get("/api/v1/orders/board", headers=auth("secretary_b")).get_json()["counts"]["submitted"] == 1
    )
    board = client.get("/api/v1/orders/board", headers=auth("secretary_a")).get_json()
    assert board["counts"]["submitted"] == 0 and other["state"] == "submitted"


def _all_at_once(calls: list[tuple[str, dict, dict]]) -> list[int]:
    """POST every (url, body, headers) at the same instant; their status codes."""
    barrier = threading.Barrier(len(calls))

    def one(call) -> int:
        url, body, headers = call
        with requests.Session() as session:
            barrier.wait()
            return session.post(url, json=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def test_orders_moving_opposite_ways_at_once_do_not_deadlock(place, act, world, auth, server):
    """Orders of one community resume while others are suspended, all at the same instant: each change
    touches the same two counts, in opposite directions."""
    org = [world.organization.public_id]
    headers = auth("org_admin")
    calls = []
    for n in range(12):
        order = act("org_admin", act("secretary_a", place(), "dispatch", organization_ids=org), "take")
        act("org_admin", order, "start")
        if n % 2:
            act("org_admin", order, "suspend", reason="等居民补充材料")
            calls.append((f"{server}/api/v1/orders/{order['id']}/resume", {}, headers))
        else:
            calls.append(
                (f"{server}/api/v1/orders/{order['id']}/suspend", {"reason": "等居民补充材料"}, headers)
            )
    assert _all_at_once(calls) == [200] * len(calls)
    db.session.expire_all()
    assert _kept() == _counted()


def test_a_change_made_outside_the_app_is_counted_too(place):
    order = place()
    db.session.execute(update(Order).where(Order.public_id == order["id"]).values(state="accepted"))
    db.session.commit()
    assert _kept() == _counted()
