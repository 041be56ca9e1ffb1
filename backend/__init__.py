"""Sandan (三单): the backend of a sub-district's WeChat mini-program."""

import functools
import random
import select
import time
from pathlib import Path

import psycopg
from flask import Flask, request, send_from_directory
from psycopg.pq import ConnStatus, ExecStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.pool import Pool
from werkzeug.routing import UnicodeConverter, ValidationError

# First: marshmallow's messages in Chinese before any schema is built (see backend/messages.py).
from backend import messages  # noqa: F401
from backend.config import check_production_secrets, load_config
from backend.db import db


def _sqlite_pragmas(dbapi_connection, connection_record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


event.listen(Engine, "connect", _sqlite_pragmas)


def _replace_if_closed(dbapi_connection, connection_record, connection_proxy):
    """At checkout, make sure PostgreSQL did not end an idle connection (a restart, a terminated backend);
    the pool hands out a new one instead of failing the request. An idle connection hears nothing from
    the server, so a poll of its socket settles the usual case with no round trip (pool_pre_ping would
    spend a SELECT 1 on every request); only when something arrived is the server asked."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:  # SQLite
        return
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    if not poller.poll(0):
        return
    try:
        alive = pgconn.exec_(b"SELECT 1").status == ExecStatus.TUPLES_OK
    except psycopg.OperationalError as exc:
        raise DisconnectionError(str(exc)) from exc
    if not alive or pgconn.status != ConnStatus.OK:
        raise DisconnectionError("connection ended by the server")


event.listen(Pool, "checkout", _replace_if_closed)
SQLITE_BUSY_ATTEMPTS = 5


def _retry_when_sqlite_is_busy(view):
    """Run a request again when SQLite refused its write because another writer committed first.

    A SQLite transaction that read and then writes cannot wait for a writer that committed in between: it
    fails at once with "database is locked". Running the whole request again (it has changed nothing) lets
    it see the other writer's result, as PostgreSQL's row locks would have. The embedded default only.
    What a run cannot take back outside the database is made safe to repeat where it happens: a WeChat
    code is exchanged once per request (wechat.exchange_code).
    """

    @functools.wraps(view)
    def retrying(*args, **kwargs):
        for attempt in range(SQLITE_BUSY_ATTEMPTS):
            try:
                return view(*args, **kwargs)
            except OperationalError as exc:
                if "database is locked" not in str(exc) or attempt == SQLITE_BUSY_ATTEMPTS - 1:
                    raise
                db.session.rollback()
                # The run again reads the request from the start: an uploaded file's bytes included.
                for _, upload in request.files.items(multi=True):
                    upload.stream.seek(0)
                time.sleep(0.02 * (attempt + 1) + random.random() * 0.03)
        raise AssertionError("unreachable")

    return retrying


class _PathSegment(UnicodeConverter):
    """A URL's path segment (the default converter) that holds no NUL: PostgreSQL's text cannot, so no id
    does, and looking one up would fail in the database (a 500). Refused here, no route matches: a 404."""

    def to_python(self, value: str) -> str:
        if "\x00" in value:
            raise ValidationError()
        return value


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app from the environment (and explicit overrides, for tests)."""
    config = load_config(overrides)
    check_production_secrets(config)

    app = Flask(__name__, static_folder=None)
    app.config.update(config)
    # Before any route is added: every <id> in a URL is matched by it.
    app.url_map.converters["default"] = app.url_map.converters["string"] = _PathSegment
    if not app.config.get("UPLOAD_DIR"):
        app.config["UPLOAD_DIR"] = str(Path(app.config["INSTANCE_DIR"]) / "uploads")
    from backend.extensions import JSONProvider, NoCookieSessions

    app.json = JSONProvider(app)
    app.session_interface = NoCookieSessions()
    app.json.ensure_ascii = False

    # Tables of the schema that have no routes of their own.
    import backend.idempotency
    import backend.outbox.models  # noqa: F401
    from backend import errors, localcache
    from backend.auth import access
    from backend.extensions import api, migrate
    from backend.privacy import crypto

    crypto.configure(app.config["ENCRYPTION_KEYS"], app.config["HMAC_KEY"])
    db.init_app(app)
    migrate.init_app(app, db)
    api.init_app(app)
    errors.register_error_handlers(app)
    localcache.init_app(app)  # before access: authentication reads the principals' cache
    access.init_app(app)

    from backend import health
    from backend.appointments.routes import blp as appointments_blp
    from backend.auth.routes import blp as auth_blp
    from backend.catalog.routes import blp as catalog_blp
    from backend.community.routes import blp as community_blp
    from backend.errands.routes import blp as errands_blp
    from backend.notify.routes import blp as notify_blp
    from backend.orders.routes import blp as orders_blp
    from backend.organizations.routes import blp as organizations_blp
    from backend.privacy.routes import blp as privacy_blp
    from backend.queues import dashboard
    from backend.queues.routes import blp as queues_blp
    from backend.sla.routes import blp as calendar_blp
    from backend.sla.routes import sla_blp
    from backend.storage.routes import blp as uploads_blp
    from backend.supervision.routes import blp as supervision_blp

    for blueprint in (
        auth_blp,
        community_blp,
        organizations_blp,
        privacy_blp,
        calendar_blp,
        sla_blp,
        supervision_blp,
        notify_blp,
        queues_blp,
        catalog_blp,
        orders_blp,
        appointments_blp,
        errands_blp,
        uploads_blp,
    ):
        api.register_blueprint(blueprint, url_prefix="/api/v1")
    app.register_blueprint(health.blp)
    dashboard.init_app(app)  # rq-dashboard at /admin/rq, street admins only
    from backend import demo_web

    demo_web.init_app(app)  # the clickable mini-program mock at /demo/, DEMO_MODE (sandan demo) only
    _serve_swagger_assets(app)
    _declare_framework_endpoints()

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        for endpoint, view in list(app.view_functions.items()):
            app.view_functions[endpoint] = _retry_when_sqlite_is_busy(view)

    missing = access.undeclared_endpoints(app)
    if missing:
        raise RuntimeError("endpoints without an access declaration: " + ", ".join(missing))
    return app


def _serve_swagger_assets(app: Flask) -> None:
    """Serve Swagger UI from the installed package: users in China cannot count on a CDN."""
    import swagger_ui_bundle

    from backend.auth import access

    @app.get("/api/docs/assets/<path:filename>", endpoint="swagger_assets")
    @access.public
    def swagger_assets(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)


def _declare_framework_endpoints() -> None:
    from backend.auth import access

    for endpoint in ("api-docs.openapi_json", "api-docs.openapi_swagger_ui"):
        access.declare_endpoint(endpoint, access.AccessRule(public=True))
