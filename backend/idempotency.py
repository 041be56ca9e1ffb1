"""Idempotency-Key on creating POSTs: a retried request gets the first request's resource, never a second.
A POST that adds to what exists (a subscription's grants) uses it too, naming what it changed.

The key is remembered in the same transaction as the resource it created, under a unique index: of two
concurrent requests with one key, one commits and the other's whole transaction (its resource included)
rolls back, after which it finds and returns the first one's.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from flask import g, request
from sqlalchemy import ForeignKey, Integer, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from backend import clock
from backend.db import UTCDateTime, db
from backend.errors import ApiError, ValidationFailed
from backend.privacy import crypto

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 64
# A retry comes within minutes of its request; a key is remembered far longer, then forgotten.
KEPT = timedelta(days=7)
# For @blp.doc(**DOC) on every creating POST.
DOC = {
    "parameters": [
        {"in": "header", "name": HEADER, "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH}}
    ]
}


class IdempotentRequest(db.Model):
    """The resource a creating POST made under an Idempotency-Key, for retries of the same request."""

    __tablename__ = "idempotent_requests"

    # Found by these three alone: the key is the primary key, and no other index is written with each row.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    # The same key with another body is a client bug, answered 422 rather than silently ignored.
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


def check_key(key: str | None) -> str | None:
    """Validate the header's value (None when absent)."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationFailed(details={HEADER: [f"应为 1 至 {MAX_KEY_LENGTH} 个可打印 ASCII 字符"]})
    return key


def _canonical(body) -> bytes:
    """A request body's JSON with its keys in order (times and the like as text)."""
    try:
        return orjson.dumps(body, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # an integer past 64 bits: the standard library writes it
        return json.dumps(body, sort_keys=True, default=str).encode()


def body_hash(body) -> str:
    """A keyed digest of a request body that ignores key order. Keyed: a body carries personal values (an ID
    number, a phone number, a drug list), which a plain digest would let anyone reading the table confirm."""
    return _keyed(_canonical(body))


def _keyed(canonical: bytes) -> str:
    return crypto.keyed_digest("idempotent-request", canonical)


def _same_body(recorded: str, body) -> bool:
    canonical = _canonical(body)
    # Keys recorded before the digest was keyed hold a plain SHA-256; they are forgotten within KEPT.
    return recorded in (_keyed(canonical), hashlib.sha256(canonical).hexdigest())


def earlier(*, user_id: int, endpoint: str, key: str, body) -> int | None:
    """Return the id of the resource this key already created, or None; 422 if the body differs."""
    record = db.session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.user_id == user_id,
            IdempotentRequest.endpoint == endpoint,
            IdempotentRequest.key == key,
        )
    )
    if record is None:
        return None
    if not _same_body(record.request_hash, body):
        raise ValidationFailed(
            "同一个 Idempotency-Key 不能用于不同的请求", details={HEADER: ["该键已用于另一份内容"]}
        )
    return record.resource_id


class KeyTaken(Exception):
    """Another request recorded this key first (raised by a creator that records its claim itself)."""


@dataclass(frozen=True)
class Claim:
    """A creating request's key, for a creator that records it with its resource itself."""

    user_id: int
    endpoint: str
    key: str
    request_hash: str

    def row(self, resource_id: int) -> dict:
        """The idempotent_requests row that remembers the key created ``resource_id``."""
        return {
            "user_id": self.user_id,
            "endpoint": self.endpoint,
            "key": self.key,
            "request_hash": self.request_hash,
            "resource_id": resource_id,
        }


_JSON_BODY = object()


def create_once(
    endpoint: str, model, create: Callable, on_conflict=None, *, records_key: bool = False, body=_JSON_BODY
):
    """Run a creating POST once per Idempotency-Key and commit it: a retry gets the first request's resource.

    ``on_conflict`` explains an IntegrityError that is not the key's own race (it raises, or returns None).
    With ``records_key``, ``create(claim)`` writes the key's record itself, in the statement that creates
    the resource, and no lookup precedes it: a retry finds the key taken (an IntegrityError) and gets the
    first request's resource, as a retry racing the first one does. A retry returns the model loaded.
    ``body`` is what a retry must repeat (by default the JSON body; a file upload names its bytes' digest).
    """
    key = check_key(request.headers.get(HEADER))
    if body is _JSON_BODY:
        body = request.get_json(silent=True)
    user_id = g.principal.id
    if key and not records_key:
        first = earlier(user_id=user_id, endpoint=endpoint, key=key, body=body)
        found = db.session.get(model, first) if first is not None else None
        if found is not None:
            return found
        if first is not None:
            # What the key made is gone since (a photo nobody attached is removed after a day): the key
            # starts over, in the transaction that makes the new one.
            db.session.execute(
                delete(IdempotentRequest).where(
                    IdempotentRequest.user_id == user_id,
                    IdempotentRequest.endpoint == endpoint,
                    IdempotentRequest.key == key,
                )
            )
    claim = Claim(user_id, endpoint, key, body_hash(body)) if key else None
    try:
        if records_key:
            created = create(claim)
        else:
            created = create()
            if claim is not None:
                db.session.flush()  # the resource's id, if its creator left it pending
                # Recorded in the resource's transaction: it exists only if the resource does.
                db.session.add(IdempotentRequest(**claim.row(created.id)))
        # A creator that wrote in autocommit may not have opened a session at all (nor should this).
        if db.session.registry.has() and db.session().in_transaction():
            db.session.commit()
    except (ApiError, IntegrityError, KeyTaken) as refused:
        # A retry of this very request may have committed since the check above, taking the place (409) or
        # racing this insert (IntegrityError): answer with its resource. Otherwise the refusal stands.
        db.session.rollback()
        first = earlier(user_id=user_id, endpoint=endpoint, key=key, body=body) if key else None
        if first is not None:
            return db.session.get(model, first)
        if isinstance(refused, IntegrityError) and on_conflict is not None:
            on_conflict()
        raise
    return created


def purge_expired(*, kept: timedelta = KEPT) -> int:
    """Forget the keys recorded more than ``kept`` ago and return how many: one row per keyed POST (every
    order placed) would otherwise stay for ever. Run daily, so each run removes about one day's keys."""
    cutoff = clock.now() - kept
    removed = db.session.execute(
        delete(IdempotentRequest).where(IdempotentRequest.created_at < cutoff)
    ).rowcount
    db.session.commit()
    return removed
