"""rq-dashboard, mounted at /admin/rq for street admins only.

A browser cannot send a Bearer header, so a street admin first calls POST /api/v1/queues/dashboard-session
(with the Bearer token): it sets a short-lived HttpOnly, SameSite=Strict cookie scoped to /admin/rq, holding
a signed pass that names the auth session. Every dashboard route — pages, JSON, static files and its actions —
is declared street-admin only and authenticated from that cookie (or a Bearer header), checked on every
request: logging out, revoking the session, disabling the user or withdrawing the role ends access at once.
SameSite=Strict keeps other sites from riding the cookie; the one action the dashboard also answers on GET
(requeue all of a queue) is refused unless it is a POST; its actions are logged with who did them, and its
delete and empty buttons are switched off.
"""

import logging

import redis
import rq_dashboard
from flask import Flask, current_app, g, has_request_context, request, url_for
from rq_dashboard.web import setup_rq_connection
from werkzeug.exceptions import MethodNotAllowed

from backend.auth import access
from backend.auth.roles import Role
from backend.errors import ServiceUnavailable, error_response

log = logging.getLogger(__name__)

URL_PREFIX = "/admin/rq"
COOKIE_NAME = "sandan_rq_dashboard"
# Seconds a dashboard pass lasts; the admin asks for a new one after that.
PASS_TTL = 900

blueprint = rq_dashboard.blueprint


def pass_ttl() -> int:
    return int(current_app.config.get("QUEUE_DASHBOARD_PASS_TTL", PASS_TTL))


def authenticate():
    """The auth session behind a dashboard request: its cookie pass, else a Bearer header."""
    from backend.auth.service import authenticate_bearer
    from backend.queues.service import read_dashboard_pass

    token = request.cookies.get(COOKIE_NAME)
    header = request.headers.get("Authorization")
    if token and not header:
        return read_dashboard_pass(token, ttl=pass_ttl())
    return authenticate_bearer(header)


RULE = access.AccessRule(roles=frozenset({str(Role.STREET_ADMIN)}), authenticate=authenticate)


# Registered once, at import, before the blueprint is first registered with an app (Flask refuses later).
@blueprint.before_request
def _guard_actions():
    if request.endpoint == "rq_dashboard.requeue_all" and request.method != "POST":
        raise MethodNotAllowed(valid_methods=["POST"])
    if request.method == "POST":  # the dashboard's actions (requeue, compact), with who did them
        log.info("queue dashboard: %s %s %s", g.principal.public_id, request.method, request.path)


@blueprint.errorhandler(redis.RedisError)
def _redis_unavailable(error):
    problem = ServiceUnavailable("任务队列暂时无法访问，请稍后再试", code="queue_unavailable")
    return error_response(problem.status, problem.code, problem.message)


def _static_url(error, endpoint: str, values: dict):
    """rq-dashboard links its favicon through the app's "static" endpoint, which this app has not got."""
    if endpoint == "static" and has_request_context() and request.blueprint == blueprint.name:
        return url_for(blueprint.name + ".static", **values)
    return None


def _with_timeouts(url: str) -> str:
    """The app's Redis URL, with connect and read timeouts unless it names its own."""
    extra = [f"{k}={v}" for k, v in (("socket_connect_timeout", 1), ("socket_timeout", 5)) if k not in url]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def init_app(app: Flask) -> None:
    """Mount the dashboard on the app's Redis and declare every one of its endpoints street-admin only."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = _with_timeouts(app.config["REDIS_URL"])
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 5000)
    # No deleting or emptying from the dashboard: a deleted outbox job is only re-sent by the next sweep,
    # and failed jobs are evidence. Requeueing stays.
    app.config.setdefault("RQ_DASHBOARD_DISABLE_DELETE", True)
    app.register_blueprint(blueprint, url_prefix=URL_PREFIX)
    setup_rq_connection(app)
    app.url_build_error_handlers.append(_static_url)
    for endpoint in app.view_functions:
        if endpoint.startswith(blueprint.name + "."):
            access.declare_endpoint(endpoint, RULE)
