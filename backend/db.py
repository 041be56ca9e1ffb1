"""The declarative base, column types shared by every domain, and the public-id convention."""

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy import Connection, DateTime, Engine, MetaData, String, TypeDecorator, create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from backend import clock

# Stable constraint names keep Alembic's autogenerate and SQLite batch migrations deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


class UTCDateTime(TypeDecorator):
    """Stores UTC, returns aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


# Public ids start with the second they were made, counted from here, in six letters (34 years).
_ID_EPOCH = 1_735_689_600  # 2025-01-01 UTC
_ID_SECONDS = 32**6


def new_public_id(prefix: str) -> str:
    """Return an opaque, unguessable id such as ``od_1b2c3d7k2m9x4q1c8v3b`` (20 letters after the prefix).

    Its first six letters are the second it was made, so new rows land together at the end of the
    public-id index rather than on a random page of it (a table of millions then writes a handful of
    index pages, not one per row); the other fourteen are random (70 bits) and make it unguessable.
    """
    seconds = (int(time.time()) - _ID_EPOCH) % _ID_SECONDS
    stamp = "".join(_ALPHABET[(seconds >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0))
    # 32 letters: the low five bits of each random byte pick one, all equally likely.
    return f"{prefix}_{stamp}" + "".join(_ALPHABET[b & 31] for b in secrets.token_bytes(14))


class PublicIdMixin:
    """An opaque id for the API; the integer primary key never leaves the database."""

    PUBLIC_ID_PREFIX = "x"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)

    def __init__(self, **kwargs):
        kwargs.setdefault("public_id", new_public_id(self.PUBLIC_ID_PREFIX))
        super().__init__(**kwargs)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


def flush_unless_taken(refusal: Exception) -> None:
    """Write what the session holds, or raise ``refusal`` when a unique constraint refuses it: the same name
    or code made at the same moment by another request, which a check before the write could not see. (A
    retry of that very request, under its Idempotency-Key, then gets the first one's resource instead.)"""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise refusal from None


def commit_unless_taken(refusal: Exception) -> None:
    """flush_unless_taken(), then commit."""
    flush_unless_taken(refusal)
    db.session.commit()


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A connection outside the request's transaction where every statement commits on its own: for
    reads, with no BEGIN and ROLLBACK round trips around them, and for a write that is one statement."""
    with _autocommit_engine().connect() as connection:
        yield connection


@contextmanager
def planned_once() -> Iterator[Connection]:
    """autocommit(), on connections where PostgreSQL plans a prepared statement once (a generic plan) instead
    of again on every call: for a statement whose best plan does not depend on its values. PostgreSQL
    re-planned the recommendations' statement each time, 1.5 ms of 7, to reach the same plan."""
    with _autocommit_engine(generic_plans=True).connect() as connection:
        yield connection


@contextmanager
def autocommit_driver_connection(*, generic_plans: bool = False):
    """The DBAPI connection itself (psycopg's, or sqlite3's), in autocommit, from autocommit()'s pool (or
    planned_once()'s): for one statement on the hottest path, without SQLAlchemy's layers around it (they
    cost more than the statement). A connection found broken is discarded rather than pooled again."""
    pooled = _autocommit_engine(generic_plans=generic_plans).raw_connection()
    try:
        yield pooled.driver_connection
    except Exception:
        if getattr(pooled.driver_connection, "broken", False):
            pooled.invalidate()
        raise
    finally:
        pooled.close()


_driver_sql: dict = {}


def fetch_all(statement, params: dict, *, generic_plan: bool = False, named: bool = False) -> list:
    """Every row of a select built once (as the hottest reads keep theirs), read in autocommit: tuples, or
    with ``named`` rows whose columns are attributes too; with ``generic_plan`` on planned_once()'s
    connections.

    On PostgreSQL the statement's SQL, compiled once, runs on psycopg itself: for a page of rows,
    SQLAlchemy's work on each execution (cache keys, result processing) costs more than the query. Values
    come as psycopg makes them (timestamps aware, in whatever zone), so a statement whose values need
    SQLAlchemy's conversions (decryption, JSON) does not belong here. Elsewhere, the usual execution.
    """
    engine = _autocommit_engine(generic_plans=generic_plan)
    if engine.dialect.name != "postgresql":
        with engine.connect() as connection:
            return connection.execute(statement, params).all()
    compiled = _driver_sql.get(statement)
    if compiled is None:
        made = statement.compile(dialect=engine.dialect)
        # The statement's own values (its constants), which SQLAlchemy would otherwise add on each call:
        # only those its SQL names, as psycopg keeps its parsing of a query for at most 50 of them.
        required = {bind.key for bind in made.binds.values() if bind.required}
        own = {k: v for k, v in made.construct_params(_check=False).items() if k not in required}
        compiled = _driver_sql[statement] = (made.string, own)
    sql, own = compiled
    rows_as = namedtuple_row if named else tuple_row
    with (
        autocommit_driver_connection(generic_plans=generic_plan) as connection,
        connection.cursor(row_factory=rows_as) as cursor,
    ):
        cursor.execute(sql, {**own, **params} if own else params)
        return cursor.fetchall()


def _autocommit_engine(*, generic_plans: bool = False) -> Engine:
    # An engine of its own, whose connections are always in autocommit: switching a pooled connection in
    # and out of it costs more than the query it is for. Generic plans are a setting of the connection
    # (plan_cache_mode), so statements that want them have connections of their own.
    # Only PostgreSQL has the setting: elsewhere every statement shares the one engine.
    generic_plans = generic_plans and db.engine.dialect.name == "postgresql"
    name = "sandan_autocommit_generic" if generic_plans else "sandan_autocommit"
    engine = current_app.extensions.get(name)
    if engine is None:
        options = dict(current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        if generic_plans:
            connect_args = dict(options.get("connect_args") or {})
            connect_args["options"] = (
                connect_args.get("options", "") + " -c plan_cache_mode=force_generic_plan"
            ).strip()
            options["connect_args"] = connect_args
        engine = create_engine(db.engine.url, isolation_level="AUTOCOMMIT", **options)
        current_app.extensions[name] = engine
    return engine
