"""A real RQ worker process runs a real job against the same database and Redis as the app."""

import subprocess
import sys

from redis import Redis
from rq import Queue
from rq.job import JobStatus

from tests.worker_process import worker_env


def test_worker_runs_a_job_end_to_end(app):
    connection = Redis.from_url(app.config["REDIS_URL"])
    job = Queue("default", connection=connection).enqueue("workers.jobs.ping", job_id="ping-1")
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "worker", "--burst"],
        env=worker_env(app),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "pong"
