"""Public ids: opaque, unique, short enough for every table's column, and in the order they were made."""

import itertools
from datetime import UTC, datetime, timedelta

import time_machine

from backend.db import PublicIdMixin, db, new_public_id


def _prefixes() -> set[str]:
    return {
        mapper.class_.PUBLIC_ID_PREFIX
        for mapper in db.Model.registry.mappers
        if issubclass(mapper.class_, PublicIdMixin)
    }


def test_every_tables_ids_fit_its_column(app):
    for prefix in _prefixes():
        made = new_public_id(prefix)
        assert made.startswith(prefix + "_") and len(made) <= 24, made


def test_ids_made_later_sort_later_and_never_repeat():
    start = datetime(2026, 11, 30, 8, tzinfo=UTC)
    made = []
    for step in range(5):
        with time_machine.travel(start + timedelta(seconds=step * 37), tick=False):
            made.append([new_public_id("od") for _ in range(200)])
    flat = [i for batch in made for i in batch]
    assert len(set(flat)) == len(flat)
    for earlier, later in itertools.pairwise(made):
        assert max(earlier) < min(later)


def test_planned_once_connections_keep_generic_plans_and_the_others_do_not(app):
    from sqlalchemy import text

    from backend.db import autocommit, planned_once

    with planned_once() as connection:
        answer = connection.execute(text("SELECT 1")).scalar()
        mode = connection.execute(text("SHOW plan_cache_mode")).scalar() if _on_postgresql() else None
    with autocommit() as connection:
        other = connection.execute(text("SHOW plan_cache_mode")).scalar() if _on_postgresql() else None
    assert answer == 1
    if _on_postgresql():
        assert (mode, other) == ("force_generic_plan", "auto")


def _on_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def test_fetch_all_sends_the_statements_own_values_beside_the_callers(app):
    from sqlalchemy import Integer, bindparam, literal, select

    from backend.db import fetch_all

    statement = select(
        (literal(40) + bindparam("n", type_=Integer)).label("total"), literal("社区").label("word")
    )
    for _ in range(2):  # compiled once, then reused with the same constants
        assert [tuple(row) for row in fetch_all(statement, {"n": 2})] == [(42, "社区")]
    (named,) = fetch_all(statement, {"n": 5}, named=True, generic_plan=True)
    assert (named.total, named.word) == (45, "社区")
