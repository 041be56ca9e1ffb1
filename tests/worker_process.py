"""Workers for tests: a real `sandan worker` process, or one pass of what a worker does, in this process (for
frozen-clock tests, where time must be the test's)."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable


def worker_env(app) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=app.config["REDIS_URL"],
        SECRET_KEY=app.config["SECRET_KEY"],
        SANDAN_ENCRYPTION_KEYS=app.config["ENCRYPTION_KEYS"],
        SANDAN_HMAC_KEY=app.config["HMAC_KEY"],
        SANDAN_INSTANCE_DIR=app.config["INSTANCE_DIR"],
        WECHAT_API_BASE_URL=app.config["WECHAT_API_BASE_URL"],
    )
    return env


@contextlib.contextmanager
def running_worker(app, *args: str):
    """Run a worker (relay, scheduler and all) until the block ends, then stop it with SIGTERM. Its output
    goes to a file, shown when the block fails: a pipe nobody reads would fill up with RQ's log lines and
    stall the worker mid-job."""
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker", *args],
            env=worker_env(app),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield proc
        except BaseException:
            output.seek(0)
            print("the worker's output, last lines:\n" + output.read()[-8000:], file=sys.stderr)
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(condition: Callable[[], object], *, timeout: float = 30, what: str = "condition") -> object:
    """Poll until ``condition()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def wait_for_lock_waiter(session, *, what: str) -> None:
    """Wait until a backend of this PostgreSQL database waits on a lock (another thread's request queued
    behind the test's open transaction), read through ``session``."""
    import sqlalchemy as sa

    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )

    def blocked() -> int:
        count = session.execute(waiting).scalar()
        session.commit()  # pg_stat_activity is read once per transaction
        return count

    wait_for(blocked, what=what)


def run_queued_behind(app, holder, work: Callable[[], object], *, what: str) -> Exception | None:
    """Run ``work`` in another thread, in ``app``'s context as a request would, until it queues behind a lock
    of ``holder`` (an open transaction on PostgreSQL); then commit ``holder``, let ``work`` finish, and return
    what it raised (None when it did not)."""
    from backend.db import db

    raised: list[Exception] = []

    def run() -> None:
        with app.app_context():
            try:
                work()
            except Exception as exc:  # returned to the test's own thread
                raised.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for_lock_waiter(db.session, what=what)
    holder.commit()
    thread.join(timeout=30)
    return raised[0] if raised else None


def run_due_jobs(connection) -> None:
    """What a worker does at this moment: relay the outbox, move due scheduled jobs, run the queues."""
    from rq import Queue, SimpleWorker
    from rq.scheduler import RQScheduler

    from backend.outbox import service as outbox

    outbox.relay_all(connection=connection)
    scheduler = RQScheduler(outbox.QUEUES, connection=connection)
    scheduler.prepare_registries(outbox.QUEUES)
    scheduler.enqueue_scheduled_jobs()
    queues = [Queue(name, connection=connection) for name in outbox.QUEUES]
    SimpleWorker(queues, connection=connection).work(burst=True)
