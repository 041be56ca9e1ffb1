"""Idempotency-Key on the creating POSTs of the street's and communities' set-up (communities, grids,
organizations, catalog categories, errand types and their versions): a retry of a lost answer, one after
another or at the same instant, gets the first request's resource, where without the key it would be
refused as a duplicate name (or, for a version, add the same version twice)."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, select, update

from backend import clock, idempotency
from backend.catalog.models import ServiceCategory
from backend.community.models import Community, Grid
from backend.db import db
from backend.errands.models import ErrandType, ErrandTypeVersion
from backend.errands.service import seed_errand_types
from backend.organizations.models import Organization
from tests.errands.errand_helpers import ELDERLY_ALLOWANCE
from tests.factories import send_at_once


@dataclass
class Creating:
    person: str
    model: type
    path: object  # world -> the POST's path
    body: object  # world -> its body
    other_body: object  # world -> another body
    prepare: Callable[[], object] = lambda: None
    identity: Callable[[dict], object] = field(default=lambda made: made["id"])  # what a retry repeats
    # Whether a second request without the key is refused (a name taken); else it makes a second one.
    refused_without_key: bool = True

    def __str__(self):
        return self.model.__tablename__


CREATING = [
    Creating(
        "street_admin",
        Community,
        lambda w: "/api/v1/communities",
        lambda w: {"street_id": w.street.public_id, "name": "东湖社区"},
        lambda w: {"street_id": w.street.public_id, "name": "西湖社区"},
    ),
    Creating(
        "secretary_a",
        Grid,
        lambda w: f"/api/v1/communities/{w.community_a.public_id}/grids",
        lambda w: {"name": "第3网格"},
        lambda w: {"name": "第4网格"},
    ),
    Creating(
        "street_admin",
        Organization,
        lambda w: f"/api/v1/streets/{w.street.public_id}/organizations",
        lambda w: {"name": "心语心理咨询中心", "community_ids": [w.community_a.public_id]},
        lambda w: {"name": "心语心理咨询中心", "community_ids": [w.community_b.public_id]},
    ),
    Creating(
        "street_admin",
        ServiceCategory,
        lambda w: "/api/v1/catalog/categories",
        lambda w: {"code": "pet_care", "name": "宠物照看", "service_kind": "daily"},
        lambda w: {"code": "pet_care", "name": "宠物寄养", "service_kind": "daily"},
    ),
    Creating(
        "street_admin",
        ErrandType,
        lambda w: "/api/v1/errand-types",
        lambda w: {"code": "elderly_allowance", "definition": ELDERLY_ALLOWANCE},
        lambda w: {"code": "elderly_allowance", "definition": {**ELDERLY_ALLOWANCE, "name": "高龄补贴"}},
        identity=lambda made: made["code"],
    ),
    Creating(
        "street_admin",
        ErrandTypeVersion,
        lambda w: "/api/v1/errand-types/subsistence_allowance/versions",
        lambda w: {"definition": ELDERLY_ALLOWANCE},
        lambda w: {"definition": {**ELDERLY_ALLOWANCE, "name": "高龄补贴"}},
        prepare=seed_errand_types,
        identity=lambda made: [v["version"] for v in made["versions"]],
        refused_without_key=False,
    ),
]


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("creating", CREATING, ids=str)
def test_a_retry_under_the_key_gets_the_first_resource(client, auth, world, creating):
    creating.prepare()
    path, body = creating.path(world), creating.body(world)
    headers = {**auth(creating.person), "Idempotency-Key": "tap-1"}
    before = _count(creating.model)
    first = client.post(path, json=body, headers=headers)
    again = client.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 201, (first.get_json(), again.get_json())
    assert creating.identity(again.get_json()) == creating.identity(first.get_json())
    assert _count(creating.model) == before + 1
    # Without the key a second request is a second attempt: at the same name, refused; else a second one.
    unkeyed = client.post(path, json=body, headers=auth(creating.person)).status_code
    assert unkeyed in ((409, 422) if creating.refused_without_key else (201,))


@pytest.mark.parametrize("creating", CREATING, ids=str)
def test_one_key_cannot_carry_another_body(client, auth, world, creating):
    creating.prepare()
    path = creating.path(world)
    headers = {**auth(creating.person), "Idempotency-Key": "tap-1"}
    assert client.post(path, json=creating.body(world), headers=headers).status_code == 201
    before = _count(creating.model)
    other = client.post(path, json=creating.other_body(world), headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["details"]
    assert _count(creating.model) == before


@pytest.mark.parametrize("creating", CREATING, ids=str)
def test_retries_at_the_same_instant_make_one(auth, world, server, creating):
    creating.prepare()
    headers = {**auth(creating.person), "Idempotency-Key": "tap-1"}
    before = _count(creating.model)
    responses = send_at_once([(server + creating.path(world), creating.body(world), headers)] * 6)
    assert {r.status_code for r in responses} == {201}, [r.json() for r in responses]
    assert len({str(creating.identity(r.json())) for r in responses}) == 1
    assert _count(creating.model) == before + 1


def test_a_type_with_the_longest_code_takes_keyed_versions(client, auth, world):
    """The key's record names the endpoint in at most 64 letters, whatever the type's code."""
    code = "a" * 64
    headers = auth("street_admin")
    made = client.post(
        "/api/v1/errand-types", json={"code": code, "definition": ELDERLY_ALLOWANCE}, headers=headers
    )
    assert made.status_code == 201, made.get_json()
    body = {"definition": {**ELDERLY_ALLOWANCE, "name": "高龄补贴"}}
    keyed = {**headers, "Idempotency-Key": "tap-1"}
    first = client.post(f"/api/v1/errand-types/{code}/versions", json=body, headers=keyed)
    again = client.post(f"/api/v1/errand-types/{code}/versions", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201, first.get_data(as_text=True)[:300]
    assert [v["version"] for v in again.get_json()["versions"]] == [1, 2]


def test_keys_are_forgotten_after_a_week(client, auth, world):
    headers = auth("street_admin")
    made = {}
    for key, name in (("tap-1", "东湖社区"), ("tap-2", "西湖社区")):
        body = {"street_id": world.street.public_id, "name": name}
        made[key] = client.post("/api/v1/communities", json=body, headers={**headers, "Idempotency-Key": key})
    for key, days in (("tap-1", 8), ("tap-2", 6)):
        db.session.execute(
            update(idempotency.IdempotentRequest)
            .where(idempotency.IdempotentRequest.key == key)
            .values(created_at=clock.now() - timedelta(days=days))
        )
    db.session.commit()

    assert idempotency.purge_expired() == 1
    # The key of six days ago still answers with its community; the one of eight is a new request, whose
    # name is taken.
    body = {"street_id": world.street.public_id, "name": "西湖社区"}
    recent = client.post("/api/v1/communities", json=body, headers={**headers, "Idempotency-Key": "tap-2"})
    assert recent.status_code == 201 and recent.get_json()["id"] == made["tap-2"].get_json()["id"]
    body = {"street_id": world.street.public_id, "name": "东湖社区"}
    old = client.post("/api/v1/communities", json=body, headers={**headers, "Idempotency-Key": "tap-1"})
    assert old.status_code == 422 and old.get_json()["details"] == {"name": ["该街道已有同名社区"]}


def test_a_body_is_remembered_by_a_keyed_digest(client, auth, world):
    """A body carries personal values (an ID number, a phone number); the key's record holds a digest that
    cannot be recomputed, so guesses cannot be tested against it, without the HMAC key."""
    path, body = "/api/v1/communities", {"street_id": world.street.public_id, "name": "东湖社区"}
    headers = {**auth("street_admin"), "Idempotency-Key": "tap-1"}
    first = client.post(path, json=body, headers=headers).get_json()
    recorded = db.session.scalar(select(idempotency.IdempotentRequest.request_hash))
    plain = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert len(recorded) == 64 and recorded != plain
    # A key recorded before the digest was keyed still answers its retry, and still refuses another body.
    db.session.execute(update(idempotency.IdempotentRequest).values(request_hash=plain))
    db.session.commit()
    again = client.post(path, json=body, headers=headers)
    assert again.status_code == 201 and again.get_json()["id"] == first["id"]
    other = client.post(path, json={**body, "name": "西湖社区"}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["details"]
