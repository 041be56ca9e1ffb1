"""Liveness and readiness for orchestrators and load balancers."""

from flask import Blueprint, jsonify
from sqlalchemy import text

from backend.auth import access
from backend.db import db
from backend.extensions import get_redis

blp = Blueprint("health", __name__)


@blp.get("/healthz")
@access.public
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@blp.get("/readyz")
@access.public
def readyz():
    """The database and Redis answer; 503 names the one that does not."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        db.session.rollback()
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503
