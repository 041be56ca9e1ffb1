"""rq-dashboard, mounted at /admin/rq for street admins only.

A browser cannot send a Bearer header, so a street admin first calls POST /api/v1/queues/dashboard-session
(with the Bearer token): it sets a short-lived HttpOnly, SameSite=Strict cookie scoped to /admin/rq, holding
a signed pass that names the auth session. Every dashboard route — pages, JSON, static files and its actions —
is declared street-admin only and authenticated from that cookie (or a Bearer header), checked on every
request: logging out, revoking the session, disabling the user or withdrawing the role ends access at once.
SameSite=Strict keeps other sites from riding the cookie; the one action the dashboard also answers on GET
(requeue all of a queue) is refused unless it is a POST; its actions are logged with who did them, and its
delete and empty buttons are switched off.

rq-dashboard's views take what their URL names (a Redis instance, a job, a list of jobs, a page of it) to
exist, and fail with a 500 when it does not; so what a URL names is checked first: 404 when it names nothing,
409 for a requeue of a job no longer failed (requeued already, by another admin or a double click).
"""

import logging

import redis
import rq_dashboard
from flask import Flask, current_app, g, has_request_context, request, url_for
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus
from rq_dashboard.web import setup_rq_connection
from werkzeug.exceptions import MethodNotAllowed

from backend.auth import access
from backend.auth.roles import Role
from backend.errors import ApiError, Conflict, NotFound, ServiceUnavailable, error_response

log = logging.getLogger(__name__)

URL_PREFIX = "/admin/rq"
COOKIE_NAME = "sandan_rq_dashboard"
# Seconds a dashboard pass lasts; the admin asks for a new one after that.
PASS_TTL = 900
# The lists of a queue's jobs rq-dashboard shows (its get_queue_registry_jobs_count knows no other), and
# the orders it lists them in.
REGISTRIES = ("queued", "failed", "deferred", "started", "finished", "scheduled", "canceled")
ORDERS = ("asc", "dsc")

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


def _instance_exists():
    """An instance number past the app's one Redis names no page (run before rq-dashboard's own hook, which
    connects to the instance the URL numbers: see init_app)."""
    number = (request.view_args or {}).get("instance_number")
    if number is not None and number >= len(current_app.config["RQ_DASHBOARD_REDIS_URL"]):
        raise NotFound("队列实例不存在", code="queue_instance_not_found", details={"instance_number": number})


def _positive_integer(value) -> bool:
    if isinstance(value, str):  # the JSON routes take pages as text; int() would take " 8" or "٨" too
        return value.isascii() and value.isdigit() and len(value) <= 9 and int(value) >= 1
    return value >= 1


# After the guard above, and after the access check: whether a job exists is for street admins to learn.
@blueprint.before_request
def _names_exist():
    from backend.queues.service import job_status

    args = request.view_args or {}
    registry = args.get("registry_name")
    if registry is not None and registry not in REGISTRIES:
        raise NotFound(
            "任务列表不存在",
            code="job_registry_not_found",
            details={"registry_name": registry, "allowed": REGISTRIES},
        )
    if args.get("order") is not None and args["order"] not in ORDERS:
        raise NotFound(
            "排序只能是 asc（正序）或 dsc（倒序）", code="page_not_found", details={"order": args["order"]}
        )
    for name in ("per_page", "page"):
        if args.get(name) is not None and not _positive_integer(args[name]):
            raise NotFound("页码和每页条数须为正整数", code="page_not_found", details={name: args[name]})
    job_id = args.get("job_id")
    if job_id is None:
        return
    status = job_status(connection=current_app.redis_conn, job_id=job_id)
    if status is None:
        raise NotFound("任务不存在", code="job_not_found", details={"job_id": job_id})
    if request.endpoint == "rq_dashboard.requeue_job_view" and status != JobStatus.FAILED:
        raise _not_failed(job_id, status)


def _not_failed(job_id: str, status: str | None) -> Conflict:
    return Conflict(
        "该任务已不在失败列表中（可能已重新排队）",
        code="job_not_failed",
        details={"job_id": job_id, "status": status},
    )


def _answer(problem: ApiError):
    return error_response(problem.status, problem.code, problem.message, problem.details)


@blueprint.errorhandler(NoSuchJobError)
def _job_gone(error):
    """The job expired between the check above and the view."""
    job_id = (request.view_args or {}).get("job_id")
    return _answer(NotFound("任务不存在", code="job_not_found", details={"job_id": job_id}))


@blueprint.errorhandler(InvalidJobOperation)
def _requeued_meanwhile(error):
    """Two requeues of one job at once both passed the check above; RQ let only one take it off the list."""
    from backend.queues.service import job_status

    job_id = (request.view_args or {}).get("job_id")
    try:
        status = job_status(connection=current_app.redis_conn, job_id=job_id)
    except ServiceUnavailable:  # raised in an error handler, it would be a 500; the answer stands without it
        status = None
    return _answer(_not_failed(job_id, status))


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
    # Ahead of rq-dashboard's hook (the blueprint's first, registered when rq_dashboard was imported), and
    # after the app's access check, which runs before any blueprint's hooks.
    app.before_request_funcs[blueprint.name].insert(0, _instance_exists)
    setup_rq_connection(app)
    app.url_build_error_handlers.append(_static_url)
    for endpoint in app.view_functions:
        if endpoint.startswith(blueprint.name + "."):
            access.declare_endpoint(endpoint, RULE)
