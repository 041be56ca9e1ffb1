"""The worker forks no work horse while its outbox relay thread is in the database: a lock the relay held
inside the driver at that moment would be copied, held, into the horse, and the horse would wait on it for
ever (seen on SQLite, the job neither done nor failed)."""

import threading
import time

from redis import Redis
from rq import Queue

from tests.worker_process import wait_for
from workers.main import build_worker
from workers.outbox import IN_THE_DATABASE


def test_the_horse_is_forked_once_the_relay_is_out_of_the_database(app, in_worker):
    connection = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue("default", connection=connection)
    job = queue.enqueue(time.time)  # run in the horse: when it ran
    held = threading.Event()
    released_at = []

    def relay_mid_batch():
        with IN_THE_DATABASE:
            held.set()
            wait_for(lambda: queue.count == 0, what="the worker to take the job")
            time.sleep(0.3)  # long past a fork and a job this small, were the fork not waiting
            released_at.append(time.time())

    relay = threading.Thread(target=relay_mid_batch)
    relay.start()
    held.wait(10)
    build_worker(connection, ("default",)).work(burst=True)  # the main thread: RQ sets signal handlers
    relay.join(10)
    job.refresh()
    assert job.is_finished, job.get_status()
    assert job.return_value() >= released_at[0]
