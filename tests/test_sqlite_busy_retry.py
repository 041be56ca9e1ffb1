"""The embedded default runs a request again when SQLite refuses its write ("database is locked"); the run
again must read the request as the first run did: an upload's bytes from the start, a WeChat code that
WeChat answers only once.

The refusal is SQLite's own: another connection holds the write lock when the request first writes, with
the request's connection told not to wait for it, and lets go once the refusal is raised."""

import io
import sqlite3
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from backend.auth.models import User
from backend.db import db
from backend.storage import service as storage
from backend.storage.models import Upload
from tests.images import PNG, same_picture


@pytest.fixture(autouse=True)
def _sqlite_only(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the retry wraps the embedded default's views only (PostgreSQL's writers wait for locks)")


@contextmanager
def first_write_refused(first_word: str):
    """Refuse the first statement that begins with ``first_word`` with SQLite's "database is locked"."""
    other = sqlite3.connect(db.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock, held
    refused = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not refused and statement.lstrip().upper().startswith(first_word):
            cursor.connection.execute("PRAGMA busy_timeout=0")

    def on_error(context):
        if "database is locked" in str(context.original_exception) and not refused:
            refused.append(context.statement)
            other.execute("ROLLBACK")
            context.connection.connection.driver_connection.execute("PRAGMA busy_timeout=5000")

    sa.event.listen(db.engine, "before_cursor_execute", before)
    sa.event.listen(db.engine, "handle_error", on_error)
    try:
        yield refused
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)
        sa.event.remove(db.engine, "handle_error", on_error)
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def _files() -> set:
    return {p for p in storage.storage().root.rglob("*") if p.is_file()}


def test_an_upload_run_again_stores_the_same_bytes_once(client, auth):
    headers = auth("resident_a1")
    before = _files()
    with first_write_refused("INSERT") as refused:
        response = client.post(
            "/api/v1/uploads", data={"file": (io.BytesIO(PNG), "photo.png")}, headers=headers
        )
    assert refused and "uploads" in refused[0]
    assert response.status_code == 201, response.get_json()
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 1
    download = client.get(f"/api/v1/uploads/{response.get_json()['id']}", headers=headers)
    assert response.get_json()["size"] == len(download.data) and same_picture(download.data, PNG)
    # The first run's file, named by no row, is gone: one new file on disk.
    assert _files() - before == {storage.storage().root / db.session.scalar(select(Upload.storage_key))}


def test_a_login_run_again_exchanges_its_code_once(client, fake_wechat):
    code, openid = fake_wechat.state.issue_login_code()
    with first_write_refused("INSERT") as refused:
        response = client.post("/api/v1/auth/login", json={"code": code})
    assert refused and "users" in refused[0]
    assert response.status_code == 200, response.get_json()
    assert fake_wechat.state.calls("jscode2session") == 1
    assert (
        db.session.scalar(select(User.public_id).where(User.openid == openid))
        == (response.get_json()["user"]["id"])
    )


def test_a_phone_binding_run_again_exchanges_its_code_once(client, fake_wechat, auth, world):
    headers = auth("resident_a1")
    consent = {"kind": "phone", "text_version": "2026-11"}
    assert client.post("/api/v1/me/consents", json=consent, headers=headers).status_code == 201
    code = fake_wechat.state.issue_phone_code("13800138000")
    with first_write_refused("UPDATE") as refused:
        response = client.post("/api/v1/me/phone", json={"code": code}, headers=headers)
    assert refused and "users" in refused[0]
    assert response.status_code == 200, response.get_json()
    assert fake_wechat.state.calls("getuserphonenumber") == 1
    assert response.get_json()["phone"] == "138****8000"
