"""Street admins see the queues and their failed jobs, and requeue them; nobody else does."""

import base64
import logging
import socket

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from backend.db import db
from backend.outbox import service as outbox
from backend.outbox.models import OutboxMessage
from tests.workers import blocking_job
from workers import app_context


@pytest.fixture
def connection(app):
    return Redis.from_url(app.config["REDIS_URL"])


@pytest.fixture(autouse=True)
def in_process_jobs(app, monkeypatch):
    """Jobs run in this process against the test app, retried twice at once instead of over 40 minutes."""
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", (0, 0))
    app_context.use(app)
    yield
    app_context.use(None)


def work(connection) -> None:
    queues = [Queue(name, connection=connection) for name in outbox.QUEUES]
    SimpleWorker(queues, connection=connection).work(burst=True)


def _stats(client, headers) -> dict:
    response = client.get("/api/v1/queues", headers=headers)
    assert response.status_code == 200, response.get_json()
    return {q["name"]: q for q in response.get_json()["items"]}


def test_a_job_that_keeps_failing_is_listed_then_requeued_and_runs_once(
    client, auth, connection, caplog, world
):
    admin = auth("street_admin")
    message = outbox.record(job=blocking_job.FLAKY, args={"order": "o-9"})
    db.session.commit()
    assert outbox.relay_once(connection=connection).sent == 1
    work(connection)
    assert int(connection.get(blocking_job.FLAKY_RUNS_KEY)) == 3  # the first run and two retries

    stats = _stats(client, admin)
    assert stats["default"]["failed"] == 1
    assert stats["default"]["queued"] == 0
    assert stats["default"]["label"] == "普通"

    page = client.get("/api/v1/queues/failed", headers=admin).get_json()
    assert page["next_cursor"] is None
    [item] = page["items"]
    assert item["job_id"] == message.rq_job_id
    assert item["queue"] == "default"
    assert item["function"] == outbox.RUNNER
    assert item["outbox_message_id"] == message.id
    assert item["job_name"] == blocking_job.FLAKY
    assert item["description"] == f"{blocking_job.FLAKY} (outbox {message.id})"
    assert item["retries_left"] == 0
    assert "ConnectionError: 订单 o-9 的下游服务不可用" in item["traceback"]
    assert len(item["traceback"].splitlines()) <= 12
    assert item["failed_at"].endswith("+08:00")
    assert item["requeued_by"] == []

    connection.set(blocking_job.FIXED_KEY, 1)  # the outage is over
    with caplog.at_level(logging.INFO, logger="backend.queues.service"):
        response = client.post(f"/api/v1/queues/failed/{message.rq_job_id}/requeue", headers=admin)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"job_id": message.rq_job_id, "queue": "default", "status": "queued"}
    admin_id = world.users["street_admin"].public_id
    assert any(admin_id in r.getMessage() and message.rq_job_id in r.getMessage() for r in caplog.records)
    assert Job.fetch(message.rq_job_id, connection=connection).meta["requeued_by"][0]["user_id"] == admin_id

    again = client.post(f"/api/v1/queues/failed/{message.rq_job_id}/requeue", headers=admin)
    assert again.status_code == 404
    assert again.get_json()["code"] == "failed_job_not_found"
    assert again.get_json()["message"] == "失败任务不存在，或已重新排队"

    stats = _stats(client, admin)
    assert (stats["default"]["failed"], stats["default"]["queued"]) == (0, 1)
    work(connection)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).done_at is not None
    assert blocking_job.follow_ups("o-9") == 1
    assert Job.fetch(message.rq_job_id, connection=connection).get_status() == JobStatus.FINISHED


def test_failed_jobs_page_across_queues_without_gaps_or_repeats(client, auth, connection):
    ids = []
    for i, name in enumerate(["high", "default", "low", "default", "high"]):
        job = Queue(name, connection=connection).enqueue(blocking_job.crash, f"#{i}", job_id=f"crash-{i}")
        ids.append(job.id)
    work(connection)  # they fail within the same second or two: equal scores exercise the tie-break

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get("/api/v1/queues/failed", query_string=query, headers=auth("street_admin"))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(i["job_id"] for i in seen) == sorted(ids)
    crashed = next(i for i in seen if i["job_id"] == "crash-0")
    assert crashed["queue"] == "high"
    assert crashed["outbox_message_id"] is None and crashed["job_name"] is None
    assert crashed["function"].endswith(".crash")
    assert "ValueError: 崩溃 #0" in crashed["traceback"]
    # Newest failure first, to the second (RQ scores its failed registry in whole seconds).
    failed_at = [i["failed_at"][:19] for i in seen]
    assert failed_at == sorted(failed_at, reverse=True)


def test_requeue_all_puts_every_failed_job_back(client, auth, connection):
    for i, name in enumerate(["high", "low"]):
        Queue(name, connection=connection).enqueue(blocking_job.crash, str(i), job_id=f"crash-{i}")
    work(connection)
    response = client.post("/api/v1/queues/failed/requeue-all", headers=auth("street_admin"))
    assert response.status_code == 200
    assert response.get_json() == {"requeued": 2}
    stats = _stats(client, auth("street_admin"))
    assert [stats[q]["failed"] for q in ("high", "low")] == [0, 0]
    assert [stats[q]["queued"] for q in ("high", "low")] == [1, 1]


def test_requeue_of_an_unknown_or_unfailed_job_is_404(client, auth, connection):
    Queue("default", connection=connection).enqueue(blocking_job.crash, "waiting", job_id="still-queued")
    for job_id in ("no-such-job", "still-queued"):
        response = client.post(f"/api/v1/queues/failed/{job_id}/requeue", headers=auth("street_admin"))
        assert response.status_code == 404
        assert response.get_json()["code"] == "failed_job_not_found"


@pytest.mark.parametrize(
    ("job_id", "code"),
    [
        ("outbox.7", "failed_job_not_found"),
        ("任务-1", "failed_job_not_found"),
        ("a%20b", "failed_job_not_found"),
        # No id in any URL holds NUL: the app's path converter answers before the route (backend/__init__.py).
        ("%00", "not_found"),
    ],
)
def test_requeue_of_a_job_id_rq_could_never_have_made_is_404(client, auth, job_id, code):
    # RQ refuses to even look such an id up (ValueError): no failed job can have it.
    response = client.post(f"/api/v1/queues/failed/{job_id}/requeue", headers=auth("street_admin"))
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["code"] == code


def test_overview_counts_scheduled_and_live_workers(client, auth, connection):
    from datetime import timedelta

    Queue("low", connection=connection).enqueue_in(timedelta(hours=1), blocking_job.crash, "later")
    stats = _stats(client, auth("street_admin"))
    assert stats["low"]["scheduled"] == 1
    assert [stats[q]["workers"] for q in outbox.QUEUES] == [0, 0, 0]
    assert list(stats) == ["high", "default", "low"]


@pytest.mark.parametrize("raw", [None, '[NaN,"high","x"]', '[Infinity,"high","x"]', '[-Infinity,"low","x"]'])
def test_a_bad_cursor_is_422(client, auth, raw):
    # A score Redis cannot compare with (NaN) is the caller's mistake, not Redis being away (503).
    cursor = "not-a-cursor" if raw is None else base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    response = client.get(f"/api/v1/queues/failed?cursor={cursor}", headers=auth("street_admin"))
    assert response.status_code == 422
    assert response.get_json()["details"] == {"cursor": ["无效的游标"]}


@pytest.mark.parametrize("who", ["secretary_a", "org_admin", "resident_a1", "grid_worker_a1"])
def test_only_street_admins_see_the_queues(client, auth, who):
    for method, url in [
        ("GET", "/api/v1/queues"),
        ("GET", "/api/v1/queues/failed"),
        ("POST", "/api/v1/queues/failed/x/requeue"),
        ("POST", "/api/v1/queues/failed/requeue-all"),
        ("POST", "/api/v1/queues/dashboard-session"),
    ]:
        response = client.open(url, method=method, headers=auth(who))
        assert response.status_code == 403, (url, response.get_json())


def _dead_redis_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_redis_down_is_503_not_500(client, auth, app, monkeypatch):
    headers = auth("street_admin")
    dead = Redis.from_url(_dead_redis_url(), socket_connect_timeout=0.5)
    monkeypatch.setitem(app.extensions, "sandan_redis", dead)
    for method, url in [
        ("GET", "/api/v1/queues"),
        ("GET", "/api/v1/queues/failed"),
        ("POST", "/api/v1/queues/failed/x/requeue"),
        ("POST", "/api/v1/queues/failed/requeue-all"),
    ]:
        response = client.open(url, method=method, headers=headers)
        assert response.status_code == 503, (url, response.get_json())
        assert response.get_json()["code"] == "queue_unavailable"
        assert response.get_json()["message"] == "任务队列暂时无法访问，请稍后再试"


def test_outbox_jobs_carry_a_timeout_and_retries_with_backoff(connection, app, monkeypatch):
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", None)  # the product's own schedule
    message = outbox.record(job="ping")
    db.session.commit()
    outbox.relay_once(connection=connection)
    job = Job.fetch(message.rq_job_id, connection=connection)
    assert job.timeout == outbox.JOB_TIMEOUT
    assert job.retries_left == 5
    assert job.retry_intervals == [5, 30, 120, 600, 1800]
