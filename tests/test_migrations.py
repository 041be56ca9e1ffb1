"""Migrations build the schema from empty, and the result matches the models exactly."""

import json
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.db import db


def test_migrated_schema_matches_the_models(app):
    # The session's database was built from empty by running every migration (conftest's `app`).
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_migrations_ran_to_head(app):
    from alembic.script import ScriptDirectory
    from flask import current_app

    script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    with db.engine.connect() as conn:
        current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert current == script.get_current_head()


@pytest.fixture
def spare_database_url(database_url, tmp_path):
    """An empty database beside the session's, for migrating step by step with rows in it."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'spare.db'}"
        return
    url = sa.engine.make_url(database_url)
    name = f"{url.database}_spare"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
ROWS_BEFORE_0012 = [
    ("streets", {"id": 1, "name": "幸福街道", "public_id": "st_1"}),
    ("communities", {"id": 1, "street_id": 1, "name": "第1社区", "public_id": "cm_1"}),
    ("grids", {"id": 1, "community_id": 1, "name": "第1网格", "public_id": "gr_1"}),
    ("users", {"id": 1, "nickname": "居民", "real_name": "王秀英", "is_active": True, "public_id": "us_1"}),
    (
        "service_categories",
        {"id": 1, "code": "home_repair", "name": "水电维修", "service_kind": "daily", "description": "",
         "questions": "[]", "enabled": True, "sort_order": 1, "public_id": "sc_1"},
    ),
    (
        "idempotent_requests",
        {"user_id": 1, "endpoint": "orders.place", "key": "k-1", "request_hash": "h", "resource_id": 1},
    ),
]  # fmt: skip


def _order(order_id: int, number: str) -> tuple[str, dict]:
    return "orders", {
        "id": order_id, "public_id": f"od_{order_id}", "number": number, "resident_id": 1, "category_id": 1,
        "service_kind": "daily", "urgency_rank": 2, "community_id": 1, "grid_id": 1, "description": "漏水",
        "answers": "{}", "address": "x", "contact_name": "王", "contact_phone": "y", "state": "submitted",
        "pool": False, "due_at": NOW, "is_overdue": False, "is_supervised": False, "return_count": 0,
        "reopen_count": 0, "dispatch_count": 0, "extension_granted": False, "resolution_note": "",
        "updated_at": NOW, "version": 1,
    }  # fmt: skip


def _event(order_id: int) -> tuple[str, dict]:
    return "order_events", {
        "order_id": order_id, "at": NOW, "actor_role": "owner", "action": "place", "to_state": "submitted",
        "note": "", "data": "{}",
    }  # fmt: skip


def _insert(conn, row: tuple[str, dict]) -> None:
    table, values = row
    if table not in ("order_events", "sensitive_access_logs", "consents", "supervisions"):  # no created_at
        values = {"created_at": NOW, **values}
    columns = ", ".join(f'"{c}"' for c in values)
    conn.execute(
        sa.text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(f':{c}' for c in values)})"), values
    )


@contextmanager
def upgraded_with(app, database_url: str, rows: list, *, after: str):
    """In an app on ``database_url``: migrated up to ``after``, given ``rows``, then migrated to the head."""
    from flask_migrate import upgrade

    from backend import create_app

    spare = create_app({**app.config, "SQLALCHEMY_DATABASE_URI": database_url})
    with spare.app_context():
        upgrade(revision=after)
        with db.engine.begin() as conn:
            for row in rows:
                _insert(conn, row)
        upgrade()
        try:
            yield
        finally:
            db.engine.dispose()


def test_0012_keeps_the_rows_and_what_guards_them(app, spare_database_url):
    """0012 rebuilds orders and idempotent_requests on SQLite: the rows stay, the per-state counting
    triggers come back, foreign keys are enforced again afterwards, and the key's record is its key."""
    from flask_migrate import downgrade

    rows = [*ROWS_BEFORE_0012, _order(1, "2026113000000001"), _event(1)]
    with upgraded_with(app, spare_database_url, rows, after="0011"):
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM order_events WHERE order_id = 1")).scalar() == 1
            key = conn.execute(
                sa.text("SELECT resource_id FROM idempotent_requests WHERE key = 'k-1'")
            ).scalar()
            assert key == 1
            # The number is no longer checked for uniqueness (it is unique by construction) ...
            _insert(conn, _order(2, "2026113000000001"))
        with db.engine.begin() as conn:  # PostgreSQL counts at the commit
            counted = "SELECT orders FROM order_state_counts WHERE community_id = 1 AND state = 'submitted'"
            # ... and every order placed, before and after the rebuild, is counted.
            assert conn.execute(sa.text(counted)).scalar() == 2
        # The key is the primary key, and foreign keys are enforced again once migrating is over.
        for refused in (ROWS_BEFORE_0012[-1], _event(999)):
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
                _insert(conn, refused)
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM orders WHERE id = 2"))
        downgrade(revision="0011")
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 1
            assert conn.execute(sa.text("SELECT id FROM idempotent_requests")).scalar() is not None


TWO_STREETS_AND_AN_ERRAND = [
    ("streets", {"id": 1, "name": "幸福街道", "public_id": "st_1"}),
    ("streets", {"id": 2, "name": "平安街道", "public_id": "st_2"}),
    ("communities", {"id": 1, "street_id": 1, "name": "第1社区", "public_id": "cm_1"}),
    ("communities", {"id": 2, "street_id": 2, "name": "第2社区", "public_id": "cm_2"}),
    ("grids", {"id": 1, "community_id": 1, "name": "第1网格", "public_id": "gr_1"}),
    ("grids", {"id": 2, "community_id": 2, "name": "第1网格", "public_id": "gr_2"}),
    *[
        ("users",
         {"id": n, "nickname": name, "real_name": name, "is_active": True, "public_id": f"us_{n}"})
        for n, name in ((1, "居民"), (2, "代办员"), (3, "无住址"))
    ],
    ("role_memberships",
     {"id": 1, "user_id": 1, "role": "resident", "scope_type": "grid", "scope_id": 2}),
    ("errand_types", {"id": 1, "code": "medicine", "name": "代购药品", "enabled": True,
                      "current_version": 1, "public_id": "et_1"}),
    ("errand_type_versions", {"id": 1, "type_id": 1, "version": 1, "definition": "{}"}),
    ("errands", {
        "id": 1, "public_id": "er_1", "number": "E1", "type_id": 1, "type_version_id": 1,
        "resident_id": 1, "applicant_name": "王秀英", "community_id": 1, "grid_id": 1, "description": "",
        "state": "accepted",
        "due_at": NOW, "is_overdue": False, "materials": "[]", "missing_materials": "[]",
        "eligibility_note": "", "office": "", "receipt_number": "", "items": "[]", "result_note": "",
        "close_reason": "", "cancelled_by_resident": False, "rating_comment": "", "updated_at": NOW,
        "version": 1,
    }),
]  # fmt: skip


def test_0014_gives_each_earlier_read_the_street_whose_data_it_was(app, spare_database_url):
    """A read of an errand's value belongs to the errand's street; a read of a person's own profile to the
    street they live in (here another one: the errand was placed in the first street)."""
    from flask_migrate import downgrade

    reads = {
        1: ("errand:er_1", 1, 2),  # an agent reads the errand's value
        2: ("user:us_1", 1, 1),  # the resident reads their own phone
        3: ("user:us_3", 3, 3),  # someone with no residence reads their own
    }
    logs = [
        ("sensitive_access_logs", {
            "id": log_id, "actor_id": actor, "actor_role": "self", "subject_user_id": subject,
            "field": "phone", "resource": resource, "reason": "核实", "accessed_at": NOW,
        })
        for log_id, (resource, subject, actor) in reads.items()
    ]  # fmt: skip
    with upgraded_with(app, spare_database_url, [*TWO_STREETS_AND_AN_ERRAND, *logs], after="0013"):
        with db.engine.begin() as conn:
            streets = sa.text("SELECT id, street_id FROM sensitive_access_logs ORDER BY id")
            assert [tuple(row) for row in conn.execute(streets)] == [(1, 1), (2, 2), (3, None)]
        downgrade(revision="0013")
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM sensitive_access_logs")).scalar() == 3


def _clock(clock_id: int, subject: str, subject_id: int, state: str, due_at, warn_at) -> tuple[str, dict]:
    return "sla_clocks", {
        "id": clock_id, "subject_type": subject, "subject_id": subject_id, "name": "accept",
        "community_id": 1, "amount": 1, "unit": "working_days", "escalates": True, "state": state,
        "started_at": NOW, "pauses": "[]", "assumed_years": "[]", "generation": 1, "due_at": due_at,
        "warn_at": warn_at,
    }  # fmt: skip


def test_0015_shows_the_running_clocks_warning_on_orders_and_errands(app, spare_database_url):
    """Each order or errand whose running clock sets its deadline shows that clock's warning; one with
    only a stopped clock shows none."""
    from flask_migrate import downgrade

    warn = NOW - timedelta(hours=4)
    rows = [
        *TWO_STREETS_AND_AN_ERRAND,
        ROWS_BEFORE_0012[4],  # the service category
        _order(1, "2026113000000001"),
        _order(2, "2026113000000002"),
        _clock(1, "order", 1, "running", NOW, warn),
        _clock(2, "order", 2, "stopped", NOW, warn),
        _clock(3, "errand", 1, "running", NOW, warn - timedelta(hours=1)),
    ]
    with upgraded_with(app, spare_database_url, rows, after="0014"):
        read = {
            table: sa.text(f"SELECT id, warn_at FROM {table} ORDER BY id") for table in ("orders", "errands")
        }
        with db.engine.connect() as conn:
            orders = [(i, _utc(at)) for i, at in conn.execute(read["orders"])]
            errands = [(i, _utc(at)) for i, at in conn.execute(read["errands"])]
        assert orders == [(1, warn), (2, None)]
        assert errands == [(1, warn - timedelta(hours=1))]
        downgrade(revision="0014")


def _utc(value):
    """A timestamp as read by plain SQL: aware on PostgreSQL, text on SQLite."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _consent(consent_id: int, kind: str, granted_at, withdrawn_at=None) -> tuple[str, dict]:
    return "consents", {
        "id": consent_id, "user_id": 1, "kind": kind, "text_version": "2026-11", "granted_at": granted_at,
        "withdrawn_at": withdrawn_at,
    }  # fmt: skip


def test_0018_leaves_one_active_consent_of_a_kind(app, spare_database_url):
    """Twins the old race wrote are one consent given twice: the latest stands, the others end as it was
    given; withdrawn ones and other kinds are left as they were."""
    hour = timedelta(hours=1)
    rows = [
        ROWS_BEFORE_0012[0], ROWS_BEFORE_0012[3],
        _consent(1, "phone", NOW, withdrawn_at=NOW + hour),
        _consent(2, "phone", NOW + 2 * hour),
        _consent(3, "phone", NOW + 3 * hour),
        _consent(4, "phone", NOW + 4 * hour),
        _consent(5, "id_number", NOW),
    ]  # fmt: skip
    from backend.privacy.models import Consent

    with upgraded_with(app, spare_database_url, rows, after="0017"), db.engine.begin() as conn:
        ended = dict(conn.execute(sa.select(Consent.id, Consent.withdrawn_at).order_by(Consent.id)).all())
        assert ended == {
            1: NOW + hour,
            2: NOW + 3 * hour,
            3: NOW + 4 * hour,
            4: None,
            5: None,
        }


def _with(row: tuple[str, dict], **changes) -> tuple[str, dict]:
    return row[0], {**row[1], **changes}


def test_0019_takes_off_orders_what_earlier_steps_left_behind(app, spare_database_url):
    """A pending extension request on ended work, the supervised flag with no 督办 open, a take time on an
    order waiting to be taken again, a returned order's 签收 clock naming the organization that returned it
    (unless that organization had already missed it): gone; the same on orders where they belong, kept."""
    request = '{"amount": "2", "unit": "working_days", "reason": "等配件"}'
    org = ("organizations", {"id": 1, "street_id": 1, "name": "服务社", "description": "", "capacity": 10,
                             "dispatch_weight": 1.0, "public_id": "og_1"})  # fmt: skip
    rows = [
        *ROWS_BEFORE_0012[:5],
        org,
        _with(_order(1, "1"), state="closed", extension_request=request, is_supervised=True),
        _with(_order(2, "2"), state="taken", extension_request=request, is_supervised=True, taken_at=NOW),
        _with(_order(3, "3"), state="dispatched", taken_at=NOW),
        _with(_order(4, "4"), state="returned"),
        _with(_order(5, "5"), state="returned"),
        ("supervisions", {"id": 1, "public_id": "sv_1", "subject_type": "order", "subject_id": 2,
                          "community_id": 1, "reason": "bad_rating", "title": "差评", "note": "",
                          "status": "open", "raised_at": NOW, "resolution": ""}),
        _with(_clock(1, "order", 4, "running", NOW, None), organization_id=1),
        _with(_clock(2, "order", 5, "running", NOW, None), organization_id=1, overdue_at=NOW),
    ]  # fmt: skip
    with upgraded_with(app, spare_database_url, rows, after="0018"), db.engine.connect() as conn:
        orders = conn.execute(
            sa.text(
                "SELECT id, extension_request IS NOT NULL, is_supervised, taken_at IS NOT NULL FROM orders"
            )
        ).all()
        assert sorted((i, bool(e), bool(s), bool(t)) for i, e, s, t in orders) == [
            (1, False, False, False),
            (2, True, True, True),
            (3, False, False, False),
            (4, False, False, False),
            (5, False, False, False),
        ]
        clocks = conn.execute(sa.text("SELECT id, organization_id FROM sla_clocks ORDER BY id")).all()
        assert [tuple(c) for c in clocks] == [(1, None), (2, 1)]


def test_0020_encrypts_the_drug_lists_already_stored(app, spare_database_url):
    """A purchase's clear drug list comes out of 0020 as ciphertext under the app's key, read back whole by
    the model (and rotate-keys finds it); an errand with no list holds nothing. Going back gives both
    back in clear."""
    from flask_migrate import downgrade

    from backend.errands.models import Errand
    from backend.privacy import crypto

    drugs = [
        {"drug_name": "硝苯地平控释片", "quantity": "3盒", "prescription_required": True,
         "prescription_present": True},
        {"drug_name": "维生素C片", "quantity": "1瓶", "prescription_required": False,
         "prescription_present": False},
    ]  # fmt: skip
    purchase, other = TWO_STREETS_AND_AN_ERRAND[-1], TWO_STREETS_AND_AN_ERRAND[-1]
    rows = [
        *TWO_STREETS_AND_AN_ERRAND[:-1],
        _with(purchase, items=json.dumps(drugs, ensure_ascii=False)),
        _with(other, id=2, public_id="er_2", number="E2", items="[]"),
    ]
    with upgraded_with(app, spare_database_url, rows, after="0019"):
        with db.engine.connect() as conn:
            raw = dict(conn.execute(sa.text("SELECT id, items FROM errands")).all())
            read = dict(conn.execute(sa.select(Errand.id, Errand.items)).all())
        assert raw[1].startswith("gAAAAA") and "硝苯地平" not in raw[1] and raw[2] is None
        assert json.loads(crypto.decrypt(raw[1])) == drugs
        assert read == {1: drugs, 2: None}
        downgrade(revision="0019")
        with db.engine.connect() as conn:
            clear = conn.execute(sa.text("SELECT id, items FROM errands ORDER BY id")).all()
        assert [(i, json.loads(v) if isinstance(v, str) else v) for i, v in clear] == [(1, drugs), (2, [])]


def test_0021_stops_the_residents_own_steps_escalating(app, spare_database_url):
    """Only the open clocks of a step the errand's type gives the resident stop escalating."""
    from flask_migrate import downgrade

    steps = [
        {"state": "accepted", "owner": "proxy_agent", "limit": {"amount": 2, "unit": "working_days"}},
        {
            "state": "returned_to_resident",
            "owner": "resident",
            "limit": {"amount": 5, "unit": "working_days"},
        },
    ]
    version = (
        "errand_type_versions",
        {"id": 1, "type_id": 1, "version": 1, "definition": json.dumps({"steps": steps})},
    )
    rows = [
        *[
            version if table == "errand_type_versions" else (table, values)
            for table, values in TWO_STREETS_AND_AN_ERRAND
        ],
        ("sla_clocks", {**_clock(1, "errand", 1, "running", NOW, None)[1], "name": "returned_to_resident"}),
        ("sla_clocks", {**_clock(2, "errand", 1, "stopped", NOW, None)[1], "name": "returned_to_resident"}),
        ("sla_clocks", {**_clock(3, "errand", 1, "running", NOW, None)[1], "name": "accepted"}),
    ]
    with upgraded_with(app, spare_database_url, rows, after="0020"):
        read = sa.text("SELECT id, escalates FROM sla_clocks ORDER BY id")
        with db.engine.connect() as conn:
            assert [(i, bool(e)) for i, e in conn.execute(read)] == [(1, False), (2, True), (3, True)]
        downgrade(revision="0020")
        with db.engine.connect() as conn:
            assert [bool(e) for _, e in conn.execute(read)] == [True, True, True]


def test_0022_gives_every_membership_an_opaque_public_id(app, spare_database_url):
    """Memberships made before 0022 each get a public id of the form the app makes (rm_ and 20 letters),
    all different; the column is then required and unique. Going back drops it and keeps the rows."""
    from flask_migrate import downgrade

    rows = [
        *TWO_STREETS_AND_AN_ERRAND[:10],  # streets, communities, grids, users, the resident's membership
        ("role_memberships",
         {"id": 2, "user_id": 2, "role": "proxy_agent", "scope_type": "community", "scope_id": 1}),
        ("role_memberships",
         {"id": 3, "user_id": 3, "role": "street_admin", "scope_type": "street", "scope_id": 2}),
    ]  # fmt: skip
    with upgraded_with(app, spare_database_url, rows, after="0021"):
        with db.engine.connect() as conn:
            found = dict(conn.execute(sa.text("SELECT id, public_id FROM role_memberships")).all())
        assert sorted(found) == [1, 2, 3]
        assert all(re.fullmatch(r"rm_[0-9a-z]{20}", public_id) for public_id in found.values()), found
        assert len(set(found.values())) == 3
        for refused in (None, found[1]):
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
                _insert(conn, ("role_memberships", {
                    "id": 4, "user_id": 3, "role": "secretary", "scope_type": "community", "scope_id": 1,
                    "public_id": refused,
                }))  # fmt: skip
        downgrade(revision="0021")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM role_memberships")).scalar() == 3
            columns = {c["name"] for c in sa.inspect(conn).get_columns("role_memberships")}
        assert "public_id" not in columns
