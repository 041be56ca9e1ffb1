"""Recommendations ranked with reasons, and the street's rates: satisfaction, response, resolution."""

from backend.db import db
from backend.organizations.models import Organization


def _closed(place, act, world, org, level: int) -> dict:
    order = place()
    order = act("secretary_a", order, "dispatch", organization_ids=[org.public_id])
    order = act("org_admin" if org is world.organization else "other_org_admin", order, "take")
    order = act(
        "org_admin" if org is world.organization else "other_org_admin", order, "resolve", note="已办结"
    )
    return act("resident_a1", order, "confirm", level=level)


def test_recommendations_prefer_the_better_rated_and_less_loaded(client, auth, place, act, world):
    _closed(place, act, world, world.organization, 5)
    _closed(place, act, world, world.other_organization, 1)
    order = place()
    ranked = client.get(
        f"/api/v1/orders/{order['id']}/recommendations", headers=auth("secretary_a")
    ).get_json()
    names = [c["name"] for c in ranked["items"]]
    assert names == [world.organization.name, world.other_organization.name]
    best, worst = ranked["items"]
    assert best["rating"] == 5 and worst["rating"] == 1 and best["score"] > worst["score"]
    assert any("派单权重" in r for r in worst["reasons"])
    assert db.session.get(Organization, world.other_organization.id).dispatch_weight < 1
    assert (
        client.get(f"/api/v1/orders/{order['id']}/recommendations", headers=auth("org_admin")).status_code
        == 403
    )


def test_rates_per_organization_and_community(client, auth, place, act, world):
    _closed(place, act, world, world.organization, 5)
    _closed(place, act, world, world.organization, 2)
    open_order = place()
    act("secretary_a", open_order, "dispatch", organization_ids=[world.organization.public_id])
    act("org_admin", open_order, "take")

    by_org = client.get("/api/v1/orders/stats", headers=auth("street_admin")).get_json()
    ours = next(i for i in by_org["items"] if i["id"] == world.organization.public_id)
    assert ours["rated"] == 2 and ours["satisfaction_rate"] == 0.5
    assert ours["orders"] == 3 and ours["resolution_rate"] == round(2 / 3, 4)
    assert ours["response_rate"] == 1.0 and ours["levels"] == {"5": 1, "2": 1}
    by_community = client.get(
        "/api/v1/orders/stats?group_by=community", headers=auth("secretary_a")
    ).get_json()
    assert [i["name"] for i in by_community["items"]] == ["阳光社区"]
    assert client.get("/api/v1/orders/stats", headers=auth("secretary_b")).get_json()["items"] == []
    assert client.get("/api/v1/orders/stats?group_by=grid", headers=auth("street_admin")).status_code == 422


def test_an_order_called_off_before_anyone_took_it_is_no_response(client, auth, place, act, world):
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    act("resident_a1", order, "cancel", reason="不需要了")
    for group_by in ("organization", "community"):
        stats = client.get(f"/api/v1/orders/stats?group_by={group_by}", headers=auth("street_admin"))
        assert stats.get_json()["items"] == [], group_by


def test_resolution_counts_an_order_for_the_organization_that_took_it(client, auth, place, act, world):
    """Reopened and then returned or redispatched, an order is the next organization's only once it takes
    it: 解决率 does not charge it with an order it was merely offered."""
    for move in ("return", "redispatch"):
        order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
        act("org_admin", order, "take")
        act("org_admin", order, "resolve", note="已上门陪伴")
        order = act("resident_a1", order, "reopen", reason="没有按约定时间来")
        assert order["taken_at"] is None
        if move == "return":
            act("org_admin", order, "return", reason="人手不够，无法再次上门")
            act("secretary_a", order, "dispatch", organization_ids=[world.other_organization.public_id])
        else:
            act("secretary_a", order, "redispatch", organization_ids=[world.other_organization.public_id])
        items = client.get("/api/v1/orders/stats", headers=auth("street_admin")).get_json()["items"]
        other = next((i for i in items if i["id"] == world.other_organization.public_id), None)
        assert other is None or (other["orders"] == 0 and other["resolution_rate"] is None), (move, other)
