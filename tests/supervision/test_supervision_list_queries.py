"""The 督办 list names what each record is about (an order, an errand) in a bounded number of statements: the
page's subjects are read together, per kind, not one by one."""

import pytest
import sqlalchemy as sa

from backend.catalog.service import load_catalog, shipped_catalog
from backend.db import db
from backend.errands.service import seed_errand_types
from backend.notify.service import seed_templates
from backend.sla.service import seed_official_calendar
from backend.supervision.service import open_record
from tests.orders.conftest import ORDER


@pytest.fixture(autouse=True)
def subjects_data(world):
    seed_official_calendar()
    seed_templates()
    load_catalog(shipped_catalog())
    seed_errand_types()
    db.session.commit()


def _raise_on_new_items(client, auth, count: int) -> list[tuple[str, dict]]:
    """Place ``count`` orders and book ``count`` errands, and raise a 督办 on each by hand."""
    made = []
    for _ in range(count):
        order = client.post("/api/v1/orders", json=ORDER, headers=auth("resident_a1")).get_json()
        errand = client.post(
            "/api/v1/errands", json={"type": "subsistence_allowance"}, headers=auth("resident_a1")
        ).get_json()
        for kind, item in (("orders", order), ("errands", errand)):
            response = client.post(
                f"/api/v1/{kind}/{item['id']}/supervise",
                json={"reason": "进度太慢"},
                headers=auth("street_admin"),
            )
            assert response.status_code == 201, response.get_json()
            made.append((kind, item))
    return made


def _statements_of_a_page(client, auth) -> tuple[int, list[dict]]:
    headers = auth("street_admin")
    client.get("/api/v1/supervisions?limit=50", headers=headers)  # the principal cached, as it is in use
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get("/api/v1/supervisions?limit=50", headers=headers)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(statements), response.get_json()["items"]


def test_a_page_of_records_runs_the_same_statements_however_many_it_holds(client, auth, world):
    made = _raise_on_new_items(client, auth, 2)
    few, items = _statements_of_a_page(client, auth)
    assert len(items) == 4
    made += _raise_on_new_items(client, auth, 6)
    many, items = _statements_of_a_page(client, auth)
    assert len(items) == 16
    assert many == few, (few, many)
    assert many <= 5  # the page, one per kind of item, and the signed-in user at most

    # Each still names its own subject, newest first.
    expected = [
        (
            "order" if kind == "orders" else "errand",
            "工单" if kind == "orders" else "代办",
            item["id"],
            item["number"],
            "陪伴关怀" if kind == "orders" else "低保申请",
            f"pages/{kind}/detail?id={item['id']}",
        )
        for kind, item in reversed(made)
    ]
    assert [
        (s["type"], s["type_label"], s["id"], s["number"], s["title"], s["page"])
        for s in (r["subject"] for r in items)
    ] == expected


def test_a_record_whose_subject_is_gone_still_reads(client, auth, world):
    open_record(
        subject_type="order",
        subject_id=987654,
        community_id=world.community_a.id,
        reason="manual",
        title="旧工单",
    )
    open_record(
        subject_type="errand",
        subject_id=987654,
        community_id=world.community_a.id,
        reason="manual",
        title="旧代办",
    )
    db.session.commit()
    items = client.get("/api/v1/supervisions", headers=auth("street_admin")).get_json()["items"]
    assert [
        (r["subject"]["type"], r["subject"]["title"], r["subject"]["number"], r["subject"]["id"])
        for r in items
    ] == [
        ("errand", "代办", "987654", None),
        ("order", "工单", "987654", None),
    ]
