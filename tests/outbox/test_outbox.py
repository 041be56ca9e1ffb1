"""The outbox: side effects recorded with the change, relayed to RQ, run once, surviving a Redis outage."""

import subprocess
import sys
import time
from datetime import timedelta

import pytest
import time_machine
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.embedded_redis import EmbeddedRedis
from backend.outbox import service as outbox
from backend.outbox.models import OutboxMessage
from workers import app_context
from workers.registry import job

EFFECTS: list[str] = []


@job("test.effect")
def record_effect(label: str) -> None:
    EFFECTS.append(label)


@pytest.fixture
def connection(app):
    return Redis.from_url(app.config["REDIS_URL"])


@pytest.fixture(autouse=True)
def in_process_jobs(app):
    EFFECTS.clear()
    app_context.use(app)
    yield
    app_context.use(None)


def work(connection) -> None:
    queues = [Queue(name, connection=connection) for name in outbox.QUEUES]
    SimpleWorker(queues, connection=connection).work(burst=True)


def test_a_rolled_back_change_leaves_no_side_effect():
    outbox.record(job="test.effect", args={"label": "a"})
    db.session.rollback()
    assert db.session.scalar(select(OutboxMessage)) is None


def test_relay_sends_each_message_once_and_the_job_runs(connection):
    message = outbox.record(job="test.effect", args={"label": "a"})
    db.session.commit()
    assert outbox.relay_once(connection=connection).sent == 1
    assert outbox.relay_once(connection=connection).sent == 0
    assert Job.exists(message.rq_job_id, connection=connection)
    work(connection)
    db.session.refresh(message)
    assert message.done_at is not None
    assert EFFECTS == ["a"]


def test_a_second_run_of_the_same_message_changes_nothing(connection):
    message = outbox.record(job="test.effect", args={"label": "once"})
    db.session.commit()
    outbox.relay_once(connection=connection)
    # A relay that crashed before marking "sent" enqueues the same message again under another id.
    Queue("default", connection=connection).enqueue(outbox.RUNNER, message.id, job_id="duplicate")
    work(connection)
    assert EFFECTS == ["once"]
    assert Job.fetch("duplicate", connection=connection).return_value() == "skipped"


def test_scheduled_message_waits_for_its_time(connection):
    run_at = clock.now() + timedelta(hours=1)
    message = outbox.record(job="test.effect", args={"label": "later"}, run_at=run_at)
    db.session.commit()
    outbox.relay_once(connection=connection)
    work(connection)
    assert EFFECTS == []
    assert Job.fetch(message.rq_job_id, connection=connection).get_status() == "scheduled"


def test_redis_down_keeps_messages_and_the_relay_catches_up(app, tmp_path):
    server = EmbeddedRedis(data_dir=str(tmp_path)).start()
    connection = Redis.from_url(server.url, socket_connect_timeout=0.5)
    try:
        server.stop()
        message = outbox.record(job="test.effect", args={"label": "during outage"})
        db.session.commit()  # the state change itself never needed Redis
        result = outbox.relay_once(connection=connection)
        assert (result.sent, result.failed) == (0, 1)
        db.session.refresh(message)
        assert message.sent_at is None
        assert message.attempts == 1
        assert "ConnectionError" in message.last_error
        assert outbox.relay_once(connection=connection).failed == 0  # backing off: not retried yet

        server = EmbeddedRedis(data_dir=str(tmp_path), port=server.port).start()
        with time_machine.travel(clock.now() + timedelta(seconds=3)):
            assert outbox.relay_once(connection=connection).sent == 1
        work(connection)
        assert EFFECTS == ["during outage"]
    finally:
        server.stop()


def test_a_flushed_redis_is_rebuilt_from_the_database(connection):
    message = outbox.record(job="test.effect", args={"label": "lost"})
    db.session.commit()
    outbox.relay_once(connection=connection)
    connection.flushdb()
    assert outbox.rebuild_lost(connection=connection) == 1
    assert outbox.relay_once(connection=connection).sent == 1
    work(connection)
    db.session.refresh(message)
    assert message.done_at is not None
    assert EFFECTS == ["lost"]


def test_unknown_queue_is_refused():
    with pytest.raises(ValueError):
        outbox.record(job="test.effect", queue="urgent-ish")


def test_a_real_worker_process_relays_and_runs(app):
    from tests.workers.test_worker import worker_env

    message = outbox.record(job="ping")
    db.session.commit()
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker"],
        env=worker_env(app),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(OutboxMessage, message.id).done_at is not None:
                break
            time.sleep(0.1)
        done = db.session.get(OutboxMessage, message.id)
        assert done.sent_at is not None
        assert done.done_at is not None
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_messages_done_a_week_ago_are_purged_and_a_late_duplicate_run_does_nothing():
    now = clock.now()

    def message(label: str, *, done_days_ago: float | None, sent: bool = True) -> int:
        row = outbox.record(job="test.effect", args={"label": label})
        row.sent_at = now - timedelta(days=10) if sent else None
        row.done_at = None if done_days_ago is None else now - timedelta(days=done_days_ago)
        db.session.commit()
        return row.id

    old = [message(f"old{n}", done_days_ago=8) for n in range(5)]
    kept = {
        message("done six days ago", done_days_ago=6),
        message("failed every time", done_days_ago=None),  # for the failed-jobs list to name
        message("not sent yet", done_days_ago=None, sent=False),
    }
    assert outbox.purge_done(batch=2) == 5
    db.session.expire_all()
    assert set(db.session.scalars(select(OutboxMessage.id))) == kept
    assert outbox.purge_done() == 0
    # RQ delivering a purged message again (a duplicate) finds nothing to do.
    from workers.outbox import run_message

    assert run_message(old[0]) == "skipped" and EFFECTS == []
