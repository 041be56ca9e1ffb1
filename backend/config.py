"""Settings from the environment, with defaults that run a development box out of the box."""

import os
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Recognisable on purpose: production refuses to start while any of these is still in use.
DEFAULT_SECRET_KEY = "dev-secret-key-change-me"
DEFAULT_ENCRYPTION_KEY = "ZGV2LWVuY3J5cHRpb24ta2V5LWNoYW5nZS1tZS0wMDA="
DEFAULT_HMAC_KEY = "dev-hmac-key-change-me"
ENV_NAMES = ("development", "test", "production")
# The fake WeChat server's (sandan demo, tests): never production's.
DEFAULT_WECHAT_APPID = "wx-sandan-dev"
DEFAULT_WECHAT_SECRET = "dev-wechat-secret"
DEFAULT_WECHAT_API_BASE_URL = "http://127.0.0.1:8081/"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _seconds_list(name: str) -> tuple[int, ...] | None:
    raw = _env(name, "")
    if not raw:
        return None
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated whole seconds, got {raw!r}") from exc
    if any(v < 0 for v in values):
        raise ConfigError(f"{name} must not hold negative seconds, got {raw!r}")
    return values


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config from the environment, then apply explicit overrides."""
    instance = Path(_env("SANDAN_INSTANCE_DIR", str(PROJECT_ROOT / "instance")))
    cfg = {
        "ENV_NAME": _env("SANDAN_ENV", "development"),
        "SECRET_KEY": _env("SECRET_KEY", DEFAULT_SECRET_KEY),
        # Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
        "ENCRYPTION_KEYS": _env("SANDAN_ENCRYPTION_KEYS", DEFAULT_ENCRYPTION_KEY),
        "HMAC_KEY": _env("SANDAN_HMAC_KEY", DEFAULT_HMAC_KEY),
        "INSTANCE_DIR": str(instance),
        # A resolved order the resident neither confirms nor disputes closes itself after this many days.
        "ORDERS_AUTO_CLOSE_DAYS": _int("SANDAN_ORDERS_AUTO_CLOSE_DAYS", 7),
        # Uploaded photos; empty means <instance dir>/uploads.
        "UPLOAD_DIR": _env("SANDAN_UPLOAD_DIR", ""),
        "SQLALCHEMY_DATABASE_URI": _env("DATABASE_URL", f"sqlite:///{instance / 'sandan.db'}"),
        "REDIS_URL": _env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "MAX_CONTENT_LENGTH": _int("SANDAN_MAX_BODY_BYTES", 10 * 1024 * 1024),
        "ACCESS_TOKEN_TTL": _int("SANDAN_ACCESS_TOKEN_TTL", 2 * 3600),
        "REFRESH_TOKEN_TTL": _int("SANDAN_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        "WECHAT_APPID": _env("WECHAT_APPID", DEFAULT_WECHAT_APPID),
        "WECHAT_SECRET": _env("WECHAT_SECRET", DEFAULT_WECHAT_SECRET),
        "WECHAT_API_BASE_URL": _env("WECHAT_API_BASE_URL", DEFAULT_WECHAT_API_BASE_URL),
        "WECHAT_TIMEOUT": float(_env("WECHAT_TIMEOUT", "5")),
        # Seconds before each retry of a failing outbox job (one retry per entry); unset: the outbox's own.
        "JOB_RETRY_INTERVALS": _seconds_list("SANDAN_JOB_RETRY_INTERVALS"),
        "TIMEZONE": "Asia/Shanghai",
        # Keep hot, rarely changed data (principals, catalog, places) in the process (backend.localcache).
        "LOCAL_CACHES": True,
        # flask-smorest / OpenAPI
        "API_TITLE": "Sandan 三单 API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
        "JSON_AS_ASCII": False,
    }
    if overrides:
        cfg.update(overrides)
    cfg["IS_PRODUCTION"] = cfg["ENV_NAME"] == "production"
    if cfg["IS_PRODUCTION"]:
        # An unexpected database error is logged with its statement, not with the personal data bound to it.
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {}),
            "hide_parameters": True,
        }
    return cfg


def check_production_secrets(cfg: dict) -> None:
    """Refuse to run production on a key anyone can read in this repository, or an environment whose name
    is none of ours (a "prod" would quietly run with development's checks)."""
    if cfg["ENV_NAME"] not in ENV_NAMES:
        raise ConfigError(f"SANDAN_ENV={cfg['ENV_NAME']!r}: it must be one of {', '.join(ENV_NAMES)}")
    if not cfg["IS_PRODUCTION"]:
        return
    weak = []
    if cfg["SECRET_KEY"] == DEFAULT_SECRET_KEY or len(cfg["SECRET_KEY"]) < 32:
        weak.append("SECRET_KEY")
    if DEFAULT_ENCRYPTION_KEY in (key.strip() for key in cfg["ENCRYPTION_KEYS"].split(",")):
        weak.append("SANDAN_ENCRYPTION_KEYS")
    if cfg["HMAC_KEY"] == DEFAULT_HMAC_KEY or len(cfg["HMAC_KEY"]) < 32:
        weak.append("SANDAN_HMAC_KEY")
    if cfg["WECHAT_SECRET"] == DEFAULT_WECHAT_SECRET or cfg["WECHAT_APPID"] == DEFAULT_WECHAT_APPID:
        weak.append("WECHAT_APPID / WECHAT_SECRET")
    if weak:
        raise ConfigError(
            "refusing to start in production with a default or short (<32 characters) value of: "
            + ", ".join(weak)
            + " (set them in the environment)"
        )
    # The app's secret travels in the token request's query string: to WeChat over TLS, never elsewhere.
    base = urlsplit(cfg["WECHAT_API_BASE_URL"])
    if base.scheme != "https" or base.hostname in (None, "localhost") or base.hostname.startswith("127."):
        raise ConfigError(
            "refusing to start in production with WECHAT_API_BASE_URL="
            f"{cfg['WECHAT_API_BASE_URL']!r}: WeChat is reached over https (https://api.weixin.qq.com/)"
        )
