"""Process-local caches: kept only while PostgreSQL can tell this process of every change, dropped by tag,
by the committing process at once, and everywhere when a change commits."""

import pytest
from sqlalchemy import delete, text, update

from backend import localcache
from backend.auth.models import RoleMembership, User
from backend.auth.principals import principals
from backend.db import db
from tests.worker_process import wait_for

numbers = localcache.LocalCache("test-numbers", max_entries=10, max_age=300.0)


@pytest.fixture
def postgres(app) -> bool:
    return db.engine.dialect.name == "postgresql"


class Loads:
    """A loader that counts its calls and returns the next number each time."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.calls


def test_values_are_kept_only_where_a_listener_can_report_changes(postgres):
    load = Loads()
    assert numbers.get("a", load) == 1
    assert numbers.get("a", load) == (1 if postgres else 2)
    assert len(numbers) == (1 if postgres else 0)


def test_dropping_a_tag_drops_its_entries_only(postgres):
    if not postgres:
        # SQLite: nothing is ever kept, so every read loads.
        load = Loads()
        numbers.get("a", load, tags=lambda _: ("x",))
        numbers.drop("x")
        numbers.get("a", load, tags=lambda _: ("x",))
        assert load.calls == 2 and len(numbers) == 0
        return
    numbers.get("a", lambda: "A", tags=lambda _: ("x",))
    numbers.get("b", lambda: "B", tags=lambda _: ("x", "y"))
    numbers.get("c", lambda: "C", tags=lambda _: ("y",))
    numbers.drop("x")
    assert numbers.get("a", lambda: "A2") == "A2" and numbers.get("b", lambda: "B2") == "B2"
    assert numbers.get("c", lambda: "C2") == "C"
    numbers.drop()
    assert len(numbers) == 0


def test_a_full_cache_makes_room_by_dropping_its_oldest_entries(postgres):
    for n in range(25):
        numbers.get(n, lambda n=n: n)
    assert len(numbers) <= (10 if postgres else 0)
    if postgres:
        assert numbers.get(24, lambda: "reloaded") == 24 and numbers.get(0, lambda: "reloaded") == "reloaded"


def test_a_committed_change_to_a_watched_model_drops_the_users_principals_at_once(client, auth, world):
    headers = auth("resident_a1")
    assert [r["role"] for r in client.get("/api/v1/me", headers=headers).get_json()["roles"]] == ["resident"]
    user = world.users["resident_a1"]
    db.session.add(RoleMembership(user_id=user.id, role="volunteer", scope_type="organization", scope_id=1))
    db.session.commit()
    roles = [r["role"] for r in client.get("/api/v1/me", headers=headers).get_json()["roles"]]
    assert roles == ["resident", "volunteer"]


def test_a_bulk_statement_through_the_session_drops_the_whole_cache(client, auth, world):
    headers = auth("secretary_a")
    assert client.get("/api/v1/orders/board", headers=headers).status_code == 200
    db.session.execute(delete(RoleMembership).where(RoleMembership.user_id == world.users["secretary_a"].id))
    db.session.commit()
    assert client.get("/api/v1/orders/board", headers=headers).status_code == 403


def test_a_rolled_back_change_announces_nothing(client, auth, world, postgres):
    headers = auth("resident_a1")
    client.get("/api/v1/me", headers=headers)
    kept = len(principals)
    db.session.execute(update(User).where(User.id == world.users["resident_a1"].id).values(nickname="x"))
    db.session.rollback()
    assert len(principals) == kept == (1 if postgres else 0)


def test_a_lost_listener_drops_everything_and_keeps_nothing_until_it_listens_again(
    client, auth, world, postgres, monkeypatch
):
    headers = auth("resident_a1")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    if not postgres:
        assert len(principals) == 0
        return
    assert len(principals) == 1
    monkeypatch.setattr(localcache, "RECONNECT_AFTER", 3600.0)
    # Every process's listening connection ends, as in a PostgreSQL restart.
    with db.engine.connect() as other:
        ended = other.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query = 'LISTEN sandan_cache' AND datname = current_database()"
            )
        ).all()
    assert ended
    wait_for(lambda: not localcache.listener.active(), timeout=5, what="the lost listener noticed")
    assert len(principals) == 0
    # While nobody listens, a change made behind the app's back is seen on the very next request.
    with db.engine.begin() as other:
        other.execute(update(User).where(User.id == world.users["resident_a1"].id).values(is_active=False))
    assert client.get("/api/v1/me", headers=headers).status_code == 403
    assert len(principals) == 0
    monkeypatch.setattr(localcache, "RECONNECT_AFTER", 0.0)
    with db.engine.begin() as other:
        other.execute(update(User).where(User.id == world.users["resident_a1"].id).values(is_active=True))
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert len(principals) == 1
