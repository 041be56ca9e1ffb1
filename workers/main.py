"""The worker entry point: an RQ worker with its scheduler, on the named queues, highest priority first.

Timeouts and retries travel with each job (the outbox relay sets them). What the worker itself decides is how
soon a job whose worker died is noticed: RQ keeps a started job in StartedJobRegistry under a deadline of
``min(job timeout left, job monitoring interval) + a grace`` that the worker's heartbeat keeps pushing back;
once a dead worker stops pushing it, the next registry maintenance of any live worker finds the job abandoned
and retries it (AbandonedJobError) while it has retries left, else moves it to FailedJobRegistry. The defaults
are RQ's; tests shorten them through the environment:

- ``SANDAN_WORKER_TTL`` (420): seconds a worker's registration lives without a heartbeat; an idle
  worker wakes every TTL − 15 s, which is also when it can next run maintenance.
- ``SANDAN_WORKER_JOB_MONITORING_INTERVAL`` (30): seconds between heartbeats while a job runs.
- ``SANDAN_WORKER_ABANDONED_GRACE`` (60): seconds past a missed heartbeat before a job counts as abandoned.
- ``SANDAN_WORKER_MAINTENANCE_INTERVAL`` (600): seconds between registry maintenance runs.
- ``SANDAN_WORKER_IMPORTS`` (none): comma-separated modules imported at start, registering more jobs.

SIGTERM (or Ctrl-C) is a warm shutdown: the job in hand finishes, then the worker exits; a second signal
is a cold shutdown that kills the job, which is then abandoned and retried like a crash.
"""

import importlib
import os
import threading

import redis
from rq import Queue, Worker
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL, DEFAULT_MAINTENANCE_TASK_INTERVAL, DEFAULT_WORKER_TTL

from backend import logs

QUEUES = ("high", "default", "low")
# RQ adds this to a started job's deadline; SandanWorker makes it a setting.
RQ_ABANDONED_GRACE = 60


def _seconds(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number of seconds, got {raw!r}") from exc
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


class SandanWorker(Worker):
    """RQ's forking worker, with the grace before a dead worker's job counts as abandoned made a setting."""

    abandoned_grace = RQ_ABANDONED_GRACE

    def fork_work_horse(self, job, queue):
        from workers.outbox import IN_THE_DATABASE

        # Not while the outbox relay thread is inside the database driver (see IN_THE_DATABASE). The horse
        # leaves the lock held in its copy; it never relays.
        with IN_THE_DATABASE:
            super().fork_work_horse(job, queue)

    def main_work_horse(self, job, queue):
        # Runs in the freshly forked work horse. The parent's pooled database connections (its outbox relay
        # thread uses them) must not be shared across the fork: a shared PostgreSQL socket garbles both
        # sides, a shared SQLite handle breaks its locking. Start with an empty pool, leaving the parent's
        # connections open for the parent.
        _forget_inherited_connections()
        super().main_work_horse(job, queue)

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        # RQ's own rule, with its fixed 60 s replaced by abandoned_grace.
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = int(min(job.timeout - working_time, interval))
        return interval + self.abandoned_grace


def _forget_inherited_connections() -> None:
    from backend.db import db
    from workers.app_context import app

    with app().app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)


def build_worker(connection: redis.Redis, queues: tuple[str, ...] = QUEUES) -> SandanWorker:
    """A worker on the queues, with its timings from the environment (RQ's defaults otherwise)."""
    worker = SandanWorker(
        [Queue(name, connection=connection) for name in queues],
        connection=connection,
        worker_ttl=_seconds("SANDAN_WORKER_TTL", DEFAULT_WORKER_TTL, 16),
        job_monitoring_interval=_seconds(
            "SANDAN_WORKER_JOB_MONITORING_INTERVAL", DEFAULT_JOB_MONITORING_INTERVAL, 1
        ),
        maintenance_interval=_seconds(
            "SANDAN_WORKER_MAINTENANCE_INTERVAL", DEFAULT_MAINTENANCE_TASK_INTERVAL, 1
        ),
    )
    worker.abandoned_grace = _seconds("SANDAN_WORKER_ABANDONED_GRACE", RQ_ABANDONED_GRACE, 1)
    return worker


def import_job_modules() -> None:
    """Import the modules named in SANDAN_WORKER_IMPORTS, so the jobs they register can be looked up.

    Imported before the first job, in the worker's main process: every forked work horse inherits them.
    """
    for name in filter(None, (m.strip() for m in os.environ.get("SANDAN_WORKER_IMPORTS", "").split(","))):
        importlib.import_module(name)


def _warm_up() -> None:
    """Do in the parent what every job would otherwise redo in its freshly forked process: import the job
    modules (and with them the services, wechatpy, marshmallow schemas) and configure the ORM mappers."""
    from sqlalchemy.orm import configure_mappers

    from workers.registry import import_all

    import_all()
    configure_mappers()


def run(redis_url: str, queues: tuple[str, ...] = QUEUES, burst: bool = False, relay: bool = True) -> None:
    """Work the queues until stopped (or, with ``burst``, until they are empty), relaying the outbox too."""
    logs.configure()
    connection = redis.Redis.from_url(redis_url)
    worker = build_worker(connection, queues)
    # Build the app (config check, keys) before the first job, so a misconfigured worker fails at start.
    from workers.app_context import app

    app()
    import_job_modules()
    _warm_up()
    stop = threading.Event()
    if relay and not burst:
        from workers.outbox import relay_forever
        from workers.sla import cron_forever

        threading.Thread(
            target=relay_forever, args=(redis_url, stop), name="outbox-relay", daemon=True
        ).start()
        # The SLA sweep, every minute through RQ's cron scheduler; every worker runs one, a lock lets one
        # sweep at a time, so the sweep goes on while any worker is alive.
        threading.Thread(target=cron_forever, args=(redis_url, stop), name="sla-cron", daemon=True).start()
    try:
        worker.work(with_scheduler=True, burst=burst)
    finally:
        stop.set()
