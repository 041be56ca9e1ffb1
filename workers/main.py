"""The worker entry point: an RQ worker with its scheduler, on the named queues, highest priority first."""

import logging
import threading

import redis
from rq import Queue, Worker

QUEUES = ("high", "default", "low")


def run(redis_url: str, queues: tuple[str, ...] = QUEUES, burst: bool = False, relay: bool = True) -> None:
    """Work the queues until stopped (or, with ``burst``, until they are empty), relaying the outbox too."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    connection = redis.Redis.from_url(redis_url)
    worker = Worker([Queue(name, connection=connection) for name in queues], connection=connection)
    # Build the app (config check, keys) before the first job, so a misconfigured worker fails at start.
    from workers.app_context import app

    app()
    stop = threading.Event()
    if relay and not burst:
        from workers.outbox import relay_forever

        threading.Thread(
            target=relay_forever, args=(redis_url, stop), name="outbox-relay", daemon=True
        ).start()
    try:
        worker.work(with_scheduler=True, burst=burst)
    finally:
        stop.set()
