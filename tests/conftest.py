"""Fixtures: the app on SQLite (default) or PostgreSQL (DATABASE_URL), a real Redis (REDIS_URL, or an
embedded one), the fake WeChat server over real HTTP, and a clean database for every test."""

import os
import tempfile
import threading
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from backend import localcache
from backend.db import db
from backend.embedded_redis import EmbeddedRedis
from miniprogram_mock.fake_wechat import FakeWeChatServer

TEST_KEYS = {
    "SECRET_KEY": "test-secret-key-of-at-least-32-bytes",
    "ENCRYPTION_KEYS": "dGVzdC1lbmNyeXB0aW9uLWtleS0wMDAwMDAwMDAwMDA=",
    "HMAC_KEY": "test-hmac-key-of-at-least-32-bytes-too",
}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(data_dir=tempfile.mkdtemp(prefix="sandan-test-redis-")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def fake_wechat():
    with FakeWeChatServer() as server:
        yield server


def reset_schema(url: str) -> None:
    """Drop everything so the session starts from an empty database, then migrate it."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        else:
            meta = sa.MetaData()
            meta.reflect(conn)
            meta.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture(scope="session")
def app(database_url, redis_url, fake_wechat, tmp_path_factory):
    from flask_migrate import upgrade

    from backend import create_app

    reset_schema(database_url)
    app = create_app(
        {
            "ENV_NAME": "test",
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "WECHAT_API_BASE_URL": fake_wechat.url,
            "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
            **TEST_KEYS,
        }
    )
    with app.app_context():
        upgrade()
    return app


def _clean_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        # Deleting orders makes their triggers count them out: the counts go last.
        tables.remove("order_state_counts")
        for name in [*tables, "order_state_counts"]:
            db.session.execute(sa.text(f"DELETE FROM {name}"))
    db.session.commit()


@pytest.fixture(autouse=True)
def _fresh_state(request, app, fake_wechat, redis_url):
    """Each test starts with empty tables, an empty Redis database and a reset fake WeChat."""
    fake_wechat.state.reset()
    redis.Redis.from_url(redis_url).flushdb()
    ctx = app.app_context()
    ctx.push()
    yield
    db.session.rollback()
    _clean_tables()
    db.session.remove()
    # TRUNCATE restarts the ids behind the ORM's back: nothing a process kept may outlive the test.
    localcache.drop_everything()
    ctx.pop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def server(app):
    """The app served over real HTTP by a threaded server, for requests sent at once (tests.factories
    send_at_once): the test client serves one request at a time."""
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(os.environ.get("SANDAN_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def in_worker(app):
    """Job functions called in this process run against the test's app."""
    from workers import app_context

    app_context.use(app)
    yield
    app_context.use(None)


@pytest.fixture
def world():
    from tests.factories import build_world

    return build_world()


@pytest.fixture
def auth(client, fake_wechat, world):
    """``auth("secretary_a")`` → Authorization headers for that person of the world, signed in once."""
    from tests.factories import login_headers

    cache: dict[str, dict] = {}

    def headers(name: str) -> dict:
        if name not in cache:
            cache[name] = login_headers(client, fake_wechat, world.users[name])
        return cache[name]

    return headers
