"""The app as a whole: error shape, health, configuration, OpenAPI."""

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import text

from backend import create_app
from backend.auth import access
from backend.config import ConfigError
from backend.db import db


def test_unknown_route_is_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.get_json() == {"code": "not_found", "message": "未找到该资源", "details": None}


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.get_json()["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_body_over_limit_is_413(client, app):
    body = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_validation_error_is_422_with_field_messages(client):
    response = client.post("/api/v1/auth/login", json={"code": ""})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "validation_failed"
    assert "code" in body["details"]


def test_missing_field_and_unknown_field_are_named(client):
    response = client.post("/api/v1/auth/login", json={"nick": "x"})
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert set(details) == {"code", "nick"}


def test_malformed_json_is_400_not_500(client):
    response = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_body"


def test_json_nested_past_any_parsers_depth_is_400_not_500(client):
    body = '{"code": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_body"


def test_non_object_json_is_422(client):
    response = client.post("/api/v1/auth/login", json=["a"])
    assert response.status_code == 422


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_unreachable(app):
    broken = create_app({**_same_db(app), "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("error")
    assert response.get_json()["checks"]["database"] == "ok"


def _same_db(app) -> dict:
    keys = ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "ENCRYPTION_KEYS", "HMAC_KEY", "INSTANCE_DIR")
    return {k: app.config[k] for k in keys}


STRONG = {
    "ENV_NAME": "production",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "SECRET_KEY": "s3cret-but-now-long-enough-for-production",
    "ENCRYPTION_KEYS": "dGVzdC1lbmNyeXB0aW9uLWtleS0wMDAwMDAwMDAwMDA=",
    "HMAC_KEY": "h" * 32,
    "WECHAT_APPID": "wx0123456789abcdef",
    "WECHAT_SECRET": "0123456789abcdef0123456789abcdef",
    "WECHAT_API_BASE_URL": "https://api.weixin.qq.com/",
}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECRET_KEY": "dev-secret-key-change-me"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"ENCRYPTION_KEYS": "ZGV2LWVuY3J5cHRpb24ta2V5LWNoYW5nZS1tZS0wMDA="}, "SANDAN_ENCRYPTION_KEYS"),
        # The default key, however it is spaced among others.
        ({"ENCRYPTION_KEYS": " ZGV2LWVuY3J5cHRpb24ta2V5LWNoYW5nZS1tZS0wMDA=\n"}, "SANDAN_ENCRYPTION_KEYS"),
        ({"HMAC_KEY": "dev-hmac-key-change-me"}, "SANDAN_HMAC_KEY"),
        ({"WECHAT_SECRET": "dev-wechat-secret"}, "WECHAT_SECRET"),
        ({"WECHAT_APPID": "wx-sandan-dev"}, "WECHAT_APPID"),
        # The app's secret goes in the token request's query string: to WeChat over TLS only.
        ({"WECHAT_API_BASE_URL": "http://127.0.0.1:8081/"}, "WECHAT_API_BASE_URL"),
        ({"WECHAT_API_BASE_URL": "http://api.weixin.qq.com/"}, "WECHAT_API_BASE_URL"),
        ({"WECHAT_API_BASE_URL": "https://localhost:8081/"}, "WECHAT_API_BASE_URL"),
    ],
)
def test_production_refuses_default_secrets_and_names_them(overrides, named):
    with pytest.raises(ConfigError, match=named):
        create_app({**STRONG, **overrides})


def test_production_starts_with_real_secrets():
    assert create_app(STRONG).config["IS_PRODUCTION"]


@pytest.mark.parametrize("name", ["prod", "Production", ""])
def test_an_environment_name_none_of_ours_is_refused(name):
    """A misspelt "production" would otherwise run with development's checks."""
    with pytest.raises(ConfigError, match="SANDAN_ENV"):
        create_app({**STRONG, "ENV_NAME": name})


def test_production_logs_no_statement_parameters():
    """An unexpected database error is logged with its statement, not with the personal data bound to it."""
    app = create_app(STRONG)
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True
    with app.app_context():
        from backend.db import db

        assert db.engine.hide_parameters


def test_openapi_is_served_with_error_schema(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/auth/login" in spec["paths"]
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "message", "details"}


def test_openapi_says_which_operations_need_the_bearer_token(client):
    """/api/docs can send the token (its Authorize button), and a client reads which calls need it and
    who may make them."""
    spec = client.get("/api/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "登录（POST /api/v1/auth/login）得到的 access_token",
    }
    operations = {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert all("security" in op and "x-access" in op for op in operations.values()), [
        key for key, op in operations.items() if "security" not in op
    ]
    assert operations[("POST", "/api/v1/auth/login")]["security"] == []
    assert operations[("POST", "/api/v1/auth/login")]["x-access"] == "public"
    assert operations[("GET", "/api/v1/me")]["security"] == [{"bearerAuth": []}]
    assert operations[("GET", "/api/v1/me")]["x-access"] == "any signed-in user"
    board = operations[("GET", "/api/v1/orders/board")]
    assert board["security"] == [{"bearerAuth": []}]
    assert board["x-access"] == "roles: secretary, street_admin"
    placing = operations[("POST", "/api/v1/orders")]["x-access"]
    assert placing == "roles: grid_worker, resident, secretary; holding none of them: 403 residence_required"


def test_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"/api/docs/assets/swagger-ui-bundle.js" in page.data
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()


def test_a_connection_the_database_ended_is_replaced_at_checkout_not_reported(client, auth):
    from sqlalchemy import text

    from backend.db import db
    from tests.worker_process import wait_for

    headers = auth("resident_a1")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    db.session.rollback()  # every connection back in the pool, idle, as between requests
    if db.engine.dialect.name == "postgresql":
        others = (
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        # Autocommit: PostgreSQL keeps one snapshot of pg_stat_activity per transaction.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # As in a restart of PostgreSQL: every idle connection of the pool is ended by the server.
            assert conn.execute(text(f"SELECT count(pg_terminate_backend(pid)) {others}")).scalar() > 0
            wait_for(
                lambda: conn.execute(text(f"SELECT count(*) {others}")).scalar() == 0,
                timeout=5,
                what="the ended connections gone",
            )
    for _ in range(3):
        assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_an_unexpected_error_is_a_json_500_logged_with_its_request(caplog):
    app = create_app(STRONG)

    @app.get("/api/v1/_broken")
    @access.public
    def broken():
        raise RuntimeError("a bug")

    with caplog.at_level("ERROR", logger="backend.errors"):
        response = app.test_client().get("/api/v1/_broken?token=secret")
    assert response.status_code == 500
    assert response.get_json() == {"code": "internal_error", "message": "服务器内部错误", "details": None}
    [record] = [r for r in caplog.records if r.name == "backend.errors"]
    # Found by its method and path; the query string, which may carry anything, is not written.
    assert record.getMessage() == "unhandled error: GET /api/v1/_broken" and record.exc_info


def test_the_web_and_the_worker_log_with_time_level_and_source():
    script = (
        "from backend import logs; logs.configure(); import logging; "
        "logging.getLogger('backend.x').warning('问题')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING \[\d+\] backend\.x: 问题\n", result.stderr
    )
    quiet = subprocess.run(
        [sys.executable, "-c", script.replace("warning", "info")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SANDAN_LOG_LEVEL": "warning"},
    )
    assert quiet.stderr == ""


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_deadlock_or_serialization_failure_is_a_409_to_try_again(app, sqlstate):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("deadlocks and serialization failures are PostgreSQL's")
    lost = create_app({**_same_db(app), "REDIS_URL": app.config["REDIS_URL"]})

    @lost.post("/api/v1/_lost")
    @access.public
    def lost_race():
        # PostgreSQL raising the error it raises when it rolls a transaction back to break a deadlock.
        db.session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '{sqlstate}'; END $$"))

    response = lost.test_client().post("/api/v1/_lost")
    assert response.status_code == 409
    assert response.get_json()["code"] == "concurrent_change"
