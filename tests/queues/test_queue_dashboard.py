"""rq-dashboard at /admin/rq: every route street-admin only, entered through a short-lived cookie pass."""

from datetime import timedelta

import pytest
import rq_dashboard.web
import time_machine
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import delete

from backend import clock
from backend.auth import access
from backend.auth.models import RoleMembership
from backend.db import db
from backend.queues import dashboard
from tests.workers import blocking_job

PAGES = [
    "/admin/rq/",
    "/admin/rq/0/view/workers",
    "/admin/rq/0/view/jobs",
    "/admin/rq/0/view/jobs/default/failed/8/asc/1",
    "/admin/rq/0/view/job/crash-1",
    "/admin/rq/0/data/queues.json",
    "/admin/rq/0/data/workers.json",
    "/admin/rq/0/data/jobs/default/failed/8/asc/1.json",
    "/admin/rq/0/data/jobs/high/queued/8/dsc/1.json",
    "/admin/rq/0/data/jobs/low/scheduled/8/asc/1.json",
    "/admin/rq/0/data/job/crash-1.json",
    "/admin/rq/static/css/main.css",
    "/admin/rq/favicon.ico",
]


@pytest.fixture
def connection(app):
    return Redis.from_url(app.config["REDIS_URL"])


@pytest.fixture
def jobs(connection):
    """A failed job, a queued one and a scheduled one, as the dashboard will show them."""
    Queue("default", connection=connection).enqueue(blocking_job.crash, "1", job_id="crash-1")
    SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)
    Queue("high", connection=connection).enqueue(blocking_job.crash, "2", job_id="waiting-2")
    Queue("low", connection=connection).enqueue_in(timedelta(hours=1), blocking_job.crash, "3")


def enter(client, headers):
    response = client.post("/api/v1/queues/dashboard-session", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response


def test_every_dashboard_endpoint_is_declared_street_admin_only(app):
    endpoints = [ep for ep in app.view_functions if ep.startswith("rq_dashboard.")]
    assert len(endpoints) >= 15
    for endpoint in endpoints:
        rule = access.rule_for(app, endpoint)
        assert not rule.public and rule.roles == {"street_admin"}, endpoint


def test_the_pass_is_a_short_lived_strict_cookie_scoped_to_the_dashboard(client, auth):
    response = enter(client, auth("street_admin"))
    assert response.get_json()["url"] == "/admin/rq/"
    assert response.get_json()["expires_at"].endswith("+08:00")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(dashboard.COOKIE_NAME + "=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/admin/rq", f"Max-Age={dashboard.PASS_TTL}"):
        assert attribute in cookie


def test_a_street_admin_with_the_pass_sees_every_page(client, auth, jobs):
    enter(client, auth("street_admin"))
    for url in PAGES:
        response = client.get(url)  # the browser sends the cookie, no Authorization header
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
    queues = client.get("/admin/rq/0/data/queues.json").get_json()["queues"]
    default = next(q for q in queues if q["name"] == "default")
    assert default["failed_job_registry_count"] == 1
    failed = client.get("/admin/rq/0/data/jobs/default/failed/8/asc/1.json").get_json()
    assert [j["id"] for j in failed["jobs"]] == ["crash-1"]
    assert "ValueError: 崩溃 1" in failed["jobs"][0]["exc_info"]


def test_a_bearer_header_works_too(client, auth, jobs):
    assert client.get("/admin/rq/0/data/queues.json", headers=auth("street_admin")).status_code == 200


def test_requeue_works_delete_is_off_and_requeue_all_needs_a_post(client, auth, connection, jobs):
    enter(client, auth("street_admin"))
    assert client.get("/admin/rq/requeue/default").status_code == 405
    assert Queue("default", connection=connection).failed_job_registry.count == 1
    assert client.post("/admin/rq/job/crash-1/delete").get_json() == {"status": "DISABLED"}
    assert client.post("/admin/rq/queue/default/failed/empty").get_json() == {"status": "DISABLED"}
    assert Queue("default", connection=connection).failed_job_registry.count == 1
    response = client.post("/admin/rq/requeue/default")
    assert response.get_json() == {"count": 1, "status": "OK"}
    assert Queue("default", connection=connection).count == 1


def test_requeueing_a_job_no_longer_failed_is_409_with_its_status(client, auth, jobs):
    """Two admins (or one double click) requeue the same failed job: the second finds it queued."""
    headers = auth("street_admin")
    assert client.post("/admin/rq/job/crash-1/requeue", headers=headers).get_json() == {"status": "OK"}
    for job_id in ("crash-1", "waiting-2"):
        response = client.post(f"/admin/rq/job/{job_id}/requeue", headers=headers)
        assert response.status_code == 409, response.get_json()
        assert response.get_json()["code"] == "job_not_failed"
        assert response.get_json()["details"] == {"job_id": job_id, "status": "queued"}


def test_a_job_requeued_or_gone_between_the_check_and_the_requeue_is_409_or_404(
    client, auth, connection, jobs, monkeypatch
):
    requeue_job = rq_dashboard.web.requeue_job

    def another_admin_first(job_id, connection):
        requeue_job(job_id, connection=connection)
        return requeue_job(job_id, connection=connection)

    monkeypatch.setattr(rq_dashboard.web, "requeue_job", another_admin_first)
    response = client.post("/admin/rq/job/crash-1/requeue", headers=auth("street_admin"))
    assert response.status_code == 409 and response.get_json()["code"] == "job_not_failed"
    assert response.get_json()["details"] == {"job_id": "crash-1", "status": "queued"}

    Queue("default", connection=connection).enqueue(blocking_job.crash, "4", job_id="crash-4")
    SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)

    def expired_first(job_id, connection):
        Job.fetch(job_id, connection=connection).delete()
        return requeue_job(job_id, connection=connection)

    monkeypatch.setattr(rq_dashboard.web, "requeue_job", expired_first)
    response = client.post("/admin/rq/job/crash-4/requeue", headers=auth("street_admin"))
    assert response.status_code == 404 and response.get_json()["code"] == "job_not_found"


@pytest.mark.parametrize(
    ("method", "url", "code"),
    [
        ("POST", "/admin/rq/job/no-such-job/requeue", "job_not_found"),
        ("GET", "/admin/rq/0/view/job/no-such-job", "job_not_found"),
        ("GET", "/admin/rq/0/data/job/no-such-job.json", "job_not_found"),
        # Ids RQ could never have made, which it refuses to even look up.
        ("GET", "/admin/rq/0/view/job/outbox.7", "job_not_found"),
        ("GET", "/admin/rq/0/data/job/任务-1.json", "job_not_found"),
        ("GET", "/admin/rq/0/data/jobs/default/nosuchregistry/8/asc/1.json", "job_registry_not_found"),
        ("GET", "/admin/rq/0/view/jobs/default/nosuchregistry/8/asc/1", "job_registry_not_found"),
        ("GET", "/admin/rq/0/data/jobs/default/failed/0/asc/1.json", "page_not_found"),
        ("GET", "/admin/rq/0/data/jobs/default/failed/-1/asc/1.json", "page_not_found"),
        ("GET", "/admin/rq/0/data/jobs/default/failed/x/asc/1.json", "page_not_found"),
        ("GET", "/admin/rq/0/data/jobs/default/failed/" + "9" * 5000 + "/asc/1.json", "page_not_found"),
        ("GET", "/admin/rq/0/data/jobs/default/failed/8/asc/0.json", "page_not_found"),
        ("GET", "/admin/rq/0/data/jobs/default/failed/8/sideways/1.json", "page_not_found"),
        ("GET", "/admin/rq/0/view/jobs/default/failed/0/asc/1", "page_not_found"),
        ("GET", "/admin/rq/5/view/jobs", "queue_instance_not_found"),
        ("GET", "/admin/rq/1/data/queues.json", "queue_instance_not_found"),
    ],
)
def test_dashboard_urls_naming_nothing_are_404_json(client, auth, jobs, method, url, code):
    response = client.open(url, method=method, headers=auth("street_admin"))
    assert response.status_code == 404, (response.status_code, response.get_data(as_text=True)[:200])
    assert response.get_json()["code"] == code


def test_whether_a_job_exists_is_told_to_street_admins_only(client, auth, jobs):
    for url in ("/admin/rq/0/view/job/crash-1", "/admin/rq/0/view/job/no-such-job"):
        assert client.get(url).status_code == 401
        assert client.get(url, headers=auth("secretary_a")).status_code == 403


@pytest.mark.parametrize(
    "url", ["/admin/rq/", "/admin/rq/0/data/queues.json", "/admin/rq/static/css/main.css"]
)
def test_without_a_pass_it_is_401_json(client, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_missing"


def test_other_roles_are_403_even_with_their_own_login(client, auth):
    for who in ("secretary_a", "org_admin", "resident_a1"):
        response = client.get("/admin/rq/", headers=auth(who))
        assert response.status_code == 403, who


def test_the_cookie_opens_nothing_but_the_dashboard(client, auth):
    enter(client, auth("street_admin"))
    assert client.get("/api/v1/queues").status_code == 401


def test_logout_ends_the_pass(client, auth):
    headers = auth("street_admin")
    enter(client, headers)
    assert client.get("/admin/rq/").status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    response = client.get("/admin/rq/")
    assert response.status_code == 401
    assert response.get_json()["code"] == "session_revoked"


def test_losing_the_role_ends_the_pass(client, auth, world):
    enter(client, auth("street_admin"))
    db.session.execute(delete(RoleMembership).where(RoleMembership.user_id == world.users["street_admin"].id))
    db.session.commit()
    assert client.get("/admin/rq/").status_code == 403


def _token(response) -> str:
    return response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]


def test_the_pass_expires(client, auth):
    token = _token(enter(client, auth("street_admin")))
    with time_machine.travel(clock.now() + timedelta(seconds=dashboard.PASS_TTL + 5)):
        # A browser drops the cookie by then; one kept anyway is refused.
        client.set_cookie(dashboard.COOKIE_NAME, token, path="/admin/rq")
        response = client.get("/admin/rq/")
    assert response.status_code == 401
    assert response.get_json()["code"] == "dashboard_pass_expired"


def test_a_forged_pass_is_refused(client, auth):
    token = _token(enter(client, auth("street_admin")))
    client.set_cookie(dashboard.COOKIE_NAME, token[:-2] + "xx", path="/admin/rq")
    response = client.get("/admin/rq/")
    assert response.status_code == 401
    assert response.get_json()["code"] == "dashboard_pass_invalid"


def test_redis_down_is_503_json(client, auth, app, monkeypatch):
    enter(client, auth("street_admin"))
    monkeypatch.setitem(
        app.config, "RQ_DASHBOARD_REDIS_URL", ("redis://127.0.0.1:1/0?socket_connect_timeout=1",)
    )
    # rq-dashboard keeps the connection it makes on the app, for the routes that number no instance: the
    # tests after this one get the live one back.
    monkeypatch.setattr(app, "redis_conn", app.redis_conn)
    response = client.get("/admin/rq/0/data/queues.json")
    assert response.status_code == 503
    assert response.get_json()["code"] == "queue_unavailable"
