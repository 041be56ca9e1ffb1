"""Values a process keeps between requests, dropped as soon as any process commits a change to them.

Some data is read on nearly every request and changes rarely: who a token belongs to and their roles, the
service catalog, the grids and communities. A worker keeps such values in memory; correctness comes from
PostgreSQL:

- a transaction that changes a watched model (or calls ``announce``) sends ``NOTIFY sandan_cache`` naming
  the cache and the tag it touched; PostgreSQL delivers it when, and only if, the transaction commits;
- every process listens on a connection of its own and drops what it was told about before each read of a
  cache (a non-blocking read of that socket, well under a microsecond when nothing arrived);
- the process that committed drops its own copy at once, without waiting for the round trip.

Where no listener runs (SQLite; RQ workers, whose every job is a fresh process; or while the listening
connection is down) nothing is kept: every read loads from the database, so a stale value is never
served. After the listener (re)connects every cache starts empty, since notices sent while it was away
are lost. ``max_age`` bounds any entry's life besides.
"""

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import psycopg
from flask import Flask, current_app, has_request_context
from psycopg.pq import ConnStatus
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from backend.db import db

log = logging.getLogger(__name__)

CHANNEL = "sandan_cache"
# A tag meaning "everything in the cache".
ALL = "*"
RECONNECT_AFTER = 5.0  # seconds between attempts to reopen a lost listening connection
_PENDING = "localcache.pending"

_caches: dict[str, "LocalCache"] = {}
TagsOf = Callable[[object], Iterable[Hashable]]


class LocalCache:
    """A bounded map from keys to values loaded from the database; each entry carries tags by which a
    change elsewhere drops it (a user's id drops every session of that user)."""

    def __init__(self, name: str, *, max_entries: int = 10_000, max_age: float = 300.0):
        if name in _caches:
            raise ValueError(f"a local cache named {name!r} exists already")
        self.name = name
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: dict[Hashable, tuple[object, float, tuple]] = {}
        self._by_tag: dict[Hashable, set[Hashable]] = {}
        self._lock = threading.Lock()
        _caches[name] = self

    def get(self, key: Hashable, load: Callable[[], object], *, tags: TagsOf | None = None):
        """The cached value of ``key``, or ``load()`` (kept when the listener runs)."""
        if not listener.active():
            return load()
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and now - entry[1] < self.max_age:
            return entry[0]
        value = load()
        self._put(key, value, now, tuple(tags(value)) if tags else ())
        return value

    def _put(self, key, value, now: float, tags: tuple) -> None:
        with self._lock:
            self._remove(key)
            if len(self._entries) >= self.max_entries:
                # Oldest first (dicts keep insertion order): a tenth goes, so this runs rarely.
                for old in list(self._entries)[: max(1, self.max_entries // 10)]:
                    self._remove(old)
            self._entries[key] = (value, now, tags)
            for tag in tags:
                self._by_tag.setdefault(tag, set()).add(key)

    def _remove(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry[2]:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def drop(self, tag: Hashable = ALL) -> None:
        """Forget the entries carrying ``tag`` (every entry for ALL)."""
        with self._lock:
            if tag == ALL:
                self._entries.clear()
                self._by_tag.clear()
                return
            for key in list(self._by_tag.get(tag, ())):
                self._remove(key)

    def __len__(self) -> int:
        return len(self._entries)


def drop_everything() -> None:
    """Empty every cache of this process (tests truncating tables behind the ORM's back)."""
    for cache in _caches.values():
        cache.drop()


def _payload(cache: str, tag: Hashable) -> str:
    return f"{cache}:{tag}"


def _apply(payload: str) -> None:
    name, _, tag = payload.partition(":")
    cache = _caches.get(name)
    if cache is None:
        return
    # Tags travel as text; integer tags (user ids) are kept as integers.
    cache.drop(int(tag) if tag.lstrip("-").isdigit() else tag)


class _Listener:
    """This process's LISTEN connection (PostgreSQL only), opened on first use and after a fork."""

    def __init__(self):
        self._conn = None
        self._owner: tuple[int, int] | None = None  # (pid, engine) the connection belongs to
        self._failed_at = float("-inf")
        self._lock = threading.Lock()
        self._up = False
        self._engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # app → its engine

    def active(self) -> bool:
        """Whether caching is safe now. A request reads the notices once, as it starts (``refresh``); any
        other caller reads them on every use."""
        if has_request_context():
            return self._up
        return self._check()

    def refresh(self) -> None:
        """Drop whatever the notices received so far name (before each request)."""
        self._up = self._check()

    def _check(self) -> bool:
        app = current_app._get_current_object()
        engine = self._engines.get(app)
        if engine is None:
            # False when nothing may be kept here at all: caches turned off, or not PostgreSQL.
            wanted = app.config["LOCAL_CACHES"] and db.engine.dialect.name == "postgresql"
            engine = self._engines[app] = db.engine if wanted else False
        if engine is False:
            return False
        with self._lock:
            owner = (os.getpid(), id(engine))
            if (self._conn is None or self._owner != owner) and not self._connect(engine, owner):
                return False
            return self._drain()

    def _connect(self, engine, owner) -> bool:
        if self._owner == owner and time.monotonic() - self._failed_at < RECONNECT_AFTER:
            return False
        self._close()
        try:
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
            conn = psycopg.connect(*cargs, **cparams, autocommit=True, connect_timeout=3)
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:  # any failure to listen just means: do not cache for now
            log.warning("local caches off: cannot listen for changes (%s)", exc)
            self._owner, self._failed_at = owner, time.monotonic()
            return False
        self._conn, self._owner = conn, owner
        # Whatever was kept before this connection listened may have missed a notice.
        drop_everything()
        return True

    def _drain(self) -> bool:
        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
            while (notice := pgconn.notifies()) is not None:
                _apply(notice.extra.decode())
        except Exception as exc:
            log.warning("local caches off: the listening connection failed (%s)", exc)
            self._close()
            self._failed_at = time.monotonic()
            drop_everything()
            return False
        if pgconn.status != ConnStatus.OK:  # closed without an error surfacing yet
            self._close()
            drop_everything()
            return False
        return True

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                conn.close()


listener = _Listener()


def init_app(app: Flask) -> None:
    """Read the notices as each request starts (before anything reads a cache: register first)."""
    app.before_request(listener.refresh)


# Announcing changes


@dataclass(frozen=True)
class _Watch:
    cache: str
    tag: Callable[[object], Hashable]
    on_insert: bool


_watched: dict[type, list[_Watch]] = {}
# Table name → caches, for UPDATE and DELETE statements that change many rows at once.
_watched_tables: dict[str, set[str]] = {}


def watch(model: type, cache: LocalCache, *, tag: Callable[[object], Hashable] | None = None, on_insert=True):
    """Announce a change to ``cache`` whenever a row of ``model`` is flushed as changed (or new, unless
    ``on_insert`` is false: a new session row, say, cannot be in anybody's cache yet), and drop the
    whole cache on a bulk INSERT, UPDATE or DELETE of its table through the session."""
    _watched.setdefault(model, []).append(_Watch(cache.name, tag or (lambda _obj: ALL), on_insert))
    _watched_tables.setdefault(model.__table__.name, set()).add(cache.name)


def announce(session: Session, cache: LocalCache, tag: Hashable = ALL) -> None:
    """Tell every process, once this transaction commits, that the values under ``tag`` changed."""
    _announce(session, {_payload(cache.name, tag)})


def _announce(session: Session, payloads: set[str]) -> None:
    # Kept for dropping this process's own copies at commit.
    session.info.setdefault(_PENDING, set()).update(payloads)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Sent again by every flush that names them: a savepoint rolled back takes its notices with it,
        # and PostgreSQL folds identical notices of one transaction into one.
        connection.execute(
            text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"),
            {"channel": CHANNEL, "payloads": sorted(payloads)},
        )


@event.listens_for(Session, "after_flush")
def _announce_flushed(session: Session, _context) -> None:
    if not _watched:
        return
    payloads = set()
    for objects, inserted in ((session.new, True), (session.dirty, False), (session.deleted, False)):
        for obj in objects:
            for spec in _watched.get(type(obj), ()):
                if spec.on_insert or not inserted:
                    payloads.add(_payload(spec.cache, spec.tag(obj)))
    if payloads:
        _announce(session, payloads)


@event.listens_for(Session, "after_commit")
def _drop_own_copies(session: Session) -> None:
    for payload in session.info.pop(_PENDING, ()):
        _apply(payload)


@event.listens_for(Session, "after_rollback")
def _forget_announcements(session: Session) -> None:
    # PostgreSQL discards the notices of a transaction that rolls back; so do we.
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "do_orm_execute")
def _announce_bulk(state) -> None:
    # Which rows a bulk statement touches is not known beforehand: every process drops the whole cache.
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    caches = _watched_tables.get(getattr(table, "name", None), ())
    if caches:
        _announce(state.session, {_payload(name, ALL) for name in caches})
