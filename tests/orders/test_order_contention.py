"""Taking work under contention, with many real concurrent HTTP requests against a threaded server:
the first organization to take a pooled order wins and every other gets 409; of two secretaries dispatching
one order at once, one wins."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from backend.auth.roles import Role, ScopeType
from backend.db import db
from backend.orders.models import Order, OrderEvent
from backend.organizations.models import Organization, OrganizationCategory
from backend.storage.models import Upload
from tests.factories import login_headers, make_member, send_at_once

CONTENDERS = 12


def _barrier_post(url: str, headers: list[dict], body: dict) -> list[int]:
    """POST from every header set at the same instant; return the status codes."""
    return [r.status_code for r in send_at_once([(url, body, h) for h in headers], timeout=30)]


def test_first_of_many_organizations_takes_a_pooled_order(
    client, fake_wechat, auth, world, place, act, server
):
    organizations, admins = [], []
    for n in range(CONTENDERS):
        org = Organization(
            street_id=world.street.id,
            name=f"志愿服务队{n}",
            communities=[world.community_a],
            categories=[OrganizationCategory(category_code="companionship")],
        )
        db.session.add(org)
        db.session.flush()
        organizations.append(org)
        admins.append(make_member(Role.ORG_ADMIN, ScopeType.ORGANIZATION, org.id, openid=f"openid-pool-{n}"))
    db.session.commit()
    headers = [login_headers(client, fake_wechat, admin) for admin in admins]
    order = place()
    act("secretary_a", order, "dispatch", organization_ids=[o.public_id for o in organizations], pool=True)

    codes = _barrier_post(f"{server}/api/v1/orders/{order['id']}/take", headers, {})

    assert sorted(codes) == [200] + [409] * (CONTENDERS - 1)
    db.session.expire_all()
    row = db.session.scalar(select(Order).where(Order.public_id == order["id"]))
    winner = organizations[codes.index(200)]
    assert row.state == "taken" and row.organization_id == winner.id
    takes = db.session.scalar(
        select(func.count()).where(OrderEvent.order_id == row.id, OrderEvent.action == "take")
    )
    assert takes == 1


def test_of_two_secretaries_dispatching_at_once_one_wins(client, fake_wechat, auth, world, place, server):
    second = make_member(
        Role.SECRETARY, ScopeType.COMMUNITY, world.community_a.id, openid="openid-secretary-2"
    )
    headers = [auth("secretary_a"), login_headers(client, fake_wechat, second)]
    for _ in range(5):
        order = place()
        body = {"organization_ids": [world.organization.public_id]}
        codes = _barrier_post(f"{server}/api/v1/orders/{order['id']}/dispatch", headers, body)
        assert sorted(codes) == [200, 409]
        db.session.expire_all()
        row = db.session.scalar(select(Order).where(Order.public_id == order["id"]))
        dispatches = db.session.scalar(
            select(func.count()).where(OrderEvent.order_id == row.id, OrderEvent.action == "dispatch")
        )
        assert row.state == "dispatched" and row.dispatch_count == 1 and dispatches == 1


@pytest.mark.parametrize(
    "changes",
    [
        {},  # written by one statement in autocommit (PostgreSQL)
        {"category": "emergency_help", "answers": {"situation": "fall"}},  # with clocks, in a transaction
    ],
)
def test_retries_of_one_placement_at_once_make_one_order(auth, world, server, changes):
    from tests.orders.conftest import ORDER

    headers = {**auth("resident_a1"), "Idempotency-Key": "tap-once"}
    body = {**ORDER, **changes}
    barrier = threading.Barrier(8)

    def one(_) -> requests.Response:
        with requests.Session() as session:
            barrier.wait()
            return session.post(f"{server}/api/v1/orders", json=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(one, range(8)))
    assert {r.status_code for r in responses} == {201}, [r.json() for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    events = db.session.scalar(select(func.count()).where(OrderEvent.action == "place"))
    assert events == 1


def test_one_photo_placed_with_several_orders_at_once_goes_to_one(client, auth, world, server):
    from tests.images import PNG as png
    from tests.orders.conftest import ORDER

    photo = client.post(
        "/api/v1/uploads",
        data={"file": (io.BytesIO(png), "a.png")},
        headers=auth("resident_a1"),
        content_type="multipart/form-data",
    ).get_json()["id"]
    barrier = threading.Barrier(CONTENDERS)

    def one(n: int) -> requests.Response:
        body = {**ORDER, "description": f"第{n}次：独居老人希望有人陪聊", "photo_ids": [photo]}
        with requests.Session() as session:
            barrier.wait()
            return session.post(f"{server}/api/v1/orders", json=body, headers=auth("resident_a1"), timeout=30)

    with ThreadPoolExecutor(max_workers=CONTENDERS) as pool:
        responses = list(pool.map(one, range(CONTENDERS)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [422] * (CONTENDERS - 1), [r.json() for r in responses]
    placed = next(r.json() for r in responses if r.status_code == 201)
    assert [p["id"] for p in placed["photos"]] == [photo]
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    upload = db.session.scalar(select(Upload).where(Upload.public_id == photo))
    assert upload.attached_id == db.session.scalar(select(Order.id))


def test_one_rating_sent_twice_at_once_rates_once(auth, place, act, world, server):
    """An auto-closed order rated from two taps at once: one rating, and the other tap told so (409), on
    SQLite too, whose reads take no lock."""
    from datetime import timedelta

    import time_machine

    from backend import clock
    from backend.orders import service
    from backend.orders.models import Rating

    for _ in range(4):
        order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
        act("org_admin", order, "take")
        act("org_admin", order, "resolve", note="已上门陪伴")
        row = db.session.scalar(select(Order).where(Order.public_id == order["id"]))
        with time_machine.travel(clock.now() + timedelta(days=8), tick=False):
            assert service.auto_close(order_id=row.id, resolved_at=row.resolved_at.isoformat())
            db.session.commit()
        url = f"{server}/api/v1/orders/{order['id']}/rate"
        taps = send_at_once(
            [(url, {"level": 5}, auth("resident_a1")), (url, {"level": 4}, auth("resident_a1"))]
        )
        answers = sorted((r.status_code, r.json().get("code")) for r in taps)
        assert answers == [(200, None), (409, "already_rated")], answers
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).where(Rating.order_id == row.id)) == 1
