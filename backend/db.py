"""The declarative base, column types shared by every domain, and the public-id convention."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, DateTime, Engine, MetaData, String, TypeDecorator, create_engine
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


def new_public_id(prefix: str) -> str:
    """Return an opaque, unguessable id such as ``u_7k2m9x4q1c8v3b6n``."""
    # 32 letters: the low five bits of each random byte pick one, all equally likely (80 bits in all).
    return prefix + "_" + "".join(_ALPHABET[b & 31] for b in secrets.token_bytes(16))


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


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A connection outside the request's transaction where every statement commits on its own: for
    reads, with no BEGIN and ROLLBACK round trips around them, and for a write that is one statement."""
    with _autocommit_engine().connect() as connection:
        yield connection


@contextmanager
def autocommit_driver_connection():
    """The DBAPI connection itself (psycopg's, or sqlite3's), in autocommit, from autocommit()'s pool: for
    one statement on the hottest path, without SQLAlchemy's layers around it (they cost more than the
    statement). A connection found broken is discarded rather than pooled again."""
    pooled = _autocommit_engine().raw_connection()
    try:
        yield pooled.driver_connection
    except Exception:
        if getattr(pooled.driver_connection, "broken", False):
            pooled.invalidate()
        raise
    finally:
        pooled.close()


def _autocommit_engine() -> Engine:
    # An engine of its own, whose connections are always in autocommit: switching a pooled connection in
    # and out of it costs more than the query it is for.
    engine = current_app.extensions.get("sandan_autocommit")
    if engine is None:
        options = current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        engine = create_engine(db.engine.url, isolation_level="AUTOCOMMIT", **options)
        current_app.extensions["sandan_autocommit"] = engine
    return engine
