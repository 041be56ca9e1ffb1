"""Real `sandan worker` processes under faults: SIGKILL mid-job (abandoned, retried, effect once), SIGTERM.

The worker imports the test jobs of tests/workers/blocking_job.py through SANDAN_WORKER_IMPORTS, and runs
with short RQ timings (heartbeat every second, abandoned after 2 s more, registries maintained every second)
and immediate retries, so a dead worker's job is noticed in seconds instead of RQ's minutes.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker
from rq.job import Job, JobStatus

from backend.config import PROJECT_ROOT
from backend.db import db
from backend.outbox import service as outbox
from backend.outbox.models import OutboxMessage
from tests.worker_process import worker_env
from tests.workers import blocking_job

FAST_WORKER = {
    "SANDAN_WORKER_IMPORTS": blocking_job.MODULE,
    "SANDAN_WORKER_TTL": "16",  # an idle worker wakes every second (TTL − 15 s)
    "SANDAN_WORKER_JOB_MONITORING_INTERVAL": "1",
    "SANDAN_WORKER_ABANDONED_GRACE": "2",
    "SANDAN_WORKER_MAINTENANCE_INTERVAL": "1",
    "SANDAN_JOB_RETRY_INTERVALS": "0,0",
}


class Workers:
    """Start `sandan worker` processes, each in its own process group (worker, work horse, scheduler)."""

    def __init__(self, app, log_dir: Path):
        self.env = {**worker_env(app), **FAST_WORKER}
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.started) + 1}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("worker-*.log"))
        )

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n{self.logs()}")
            time.sleep(0.05)

    def kill_all(self, process: subprocess.Popen, horse_pid: int) -> None:
        """SIGKILL the worker, its scheduler and its work horse (a group of its own): a container dying."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        os.killpg(horse_pid, signal.SIGKILL)
        self.wait_for(lambda: _gone(horse_pid), "the work horse to die")

    def stop_all(self) -> None:
        """After the test, whatever happened: no worker, horse or scheduler outlives it."""
        for process in self.started:
            if process.poll() is None:
                children = _children(process.pid)
                os.killpg(process.pid, signal.SIGKILL)
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def workers(app, tmp_path):
    pool = Workers(app, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def connection(app):
    return Redis.from_url(app.config["REDIS_URL"])


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _gone(pid: int) -> bool:
    """Dead: no process, or a zombie nobody reaped (its sockets, and so its database locks, are closed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _done(message_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id).done_at is not None


def _status(job: Job) -> JobStatus:
    return job.get_status(refresh=True)


def _runs(connection: Redis) -> int:
    return int(connection.get(blocking_job.RUNS_KEY) or 0)


def test_a_worker_killed_mid_job_leaves_it_abandoned_and_a_new_worker_runs_it_once(workers, connection):
    message = outbox.record(job=blocking_job.BLOCKING, args={"order": "o-kill"})
    db.session.commit()

    first = workers.start()
    workers.wait_for(lambda: _runs(connection) == 1, "the job to start on the first worker")
    job = Job.fetch(message.rq_job_id, connection=connection)
    assert job.get_status() == JobStatus.STARTED
    retries_before = job.retries_left
    assert retries_before == 2, workers.logs()

    workers.kill_all(first, horse_pid=int(connection.get(blocking_job.PID_KEY)))
    # The killed run's effect was never committed; RQ still believes the job is running.
    assert blocking_job.follow_ups("o-kill") == 0
    assert not _done(message.id)
    assert job.get_status(refresh=True) == JobStatus.STARTED

    connection.set(blocking_job.RELEASE_KEY, 1)
    second = workers.start()
    workers.wait_for(lambda: _done(message.id), "the second worker to run the abandoned job")

    assert _runs(connection) == 2  # it ran again ...
    assert blocking_job.follow_ups("o-kill") == 1  # ... and its effect happened once
    job = Job.fetch(message.rq_job_id, connection=connection)
    # The job commits its effect before it returns; RQ records it finished just after.
    workers.wait_for(lambda: _status(job) == JobStatus.FINISHED, "RQ to record the job finished")
    # The second run was RQ's retry of an abandoned job, spending one retry.
    assert job.retries_left == retries_before - 1
    assert job.return_value() == "done"

    second.terminate()
    assert second.wait(timeout=30) == 0, workers.logs()


def test_sigterm_is_a_warm_shutdown_the_job_in_hand_finishes_first(workers, connection):
    message = outbox.record(job=blocking_job.BLOCKING, args={"order": "o-term"})
    db.session.commit()
    worker = workers.start()
    workers.wait_for(lambda: _runs(connection) == 1, "the job to start")

    worker.send_signal(signal.SIGTERM)  # to the worker alone, as `docker stop` does
    workers.wait_for(
        lambda: any(w.shutdown_requested_date for w in Worker.all(connection=connection)),
        "the worker to take the shutdown request",
    )
    assert worker.poll() is None  # still waiting for its job
    connection.set(blocking_job.RELEASE_KEY, 1)

    assert worker.wait(timeout=30) == 0, workers.logs()
    assert _done(message.id)
    assert _runs(connection) == 1
    assert blocking_job.follow_ups("o-term") == 1
    assert Job.fetch(message.rq_job_id, connection=connection).get_status() == JobStatus.FINISHED
    assert Worker.all(connection=connection) == []  # it deregistered on the way out


def test_an_idle_worker_stops_at_once_on_sigterm(workers, connection):
    worker = workers.start()
    # Idle means past start-up, signal handlers installed (a SIGTERM before that ends it with RQ's default).
    workers.wait_for(
        lambda: [w.get_state() for w in Worker.all(connection=connection)] == ["idle"], "the worker to idle"
    )
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, workers.logs()
    assert Worker.all(connection=connection) == []
