"""Job rows: the queue side, measured beside the HTTP rows in the same run.

- ``rq-noop-1w``, ``rq-noop-2w``: RQ's own throughput: N empty jobs enqueued straight to RQ, drained by 1 or 2
  ``sandan worker`` processes.
- ``notify-1w``, ``notify-2w``: N notifications recorded through ``backend.notify.service.notify`` in one
  transaction, relayed from the outbox and delivered by the same workers to the fake WeChat server.
- ``sla-sweep-100k``: ``clocks.sweep`` over 100,000 open SLA clocks whose card jobs a flushed Redis lost.

Workers are real processes (``python -m backend.cli worker``) with the environment the harness gives gunicorn,
plus ``SANDAN_WORKER_IMPORTS=bench.jobs`` so the no-op below is imported before the worker forks. Nothing here
imports ``backend`` at module level: a worker importing this module for ``noop`` stays as it was.
"""

import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import redis
import requests
import sqlalchemy as sa

from bench.procmem import children_of
from bench.report import _num, format_table
from bench.servers import REPO_ROOT, FakeWeChatProcess, _log_tail, _stop_process, flush_redis

NOOP = "noop"
NOTIFY = "notify"
SWEEP = "sweep"

# Jobs (no-op rows) and notifications (notify rows) per row; the same N for both, so fixed costs match.
JOBS_FULL, JOBS_QUICK = 1000, 100
CLOCKS_FULL, CLOCKS_QUICK = 100_000, 10_000
# Clocks with a card job due within the sweep's horizon: a few hundred of 100,000.
NEAR_SHARE = 0.003
NOOP_FUNC = "bench.jobs.noop"
NOTIFY_EVENT = "order_accepted"
# A row that sees no job finish for this long has stalled (a notify retry waits 60 s): it is marked failed.
STALL_SECONDS = 30
POLL_SECONDS = 0.05
WORKER_READY_TIMEOUT = 90
WORKER_STOP_TIMEOUT = 20
INSERT_CHUNK = 5000
NEXT_CLOCK_IDS = sa.text(
    "SELECT nextval(pg_get_serial_sequence('sla_clocks', 'id')) FROM generate_series(1, :n)"
)


def noop() -> None:
    """The no-op job: RQ's own cost per job is all that runs."""


class JobRowError(RuntimeError):
    """A job row could not be measured (a worker died, the work stalled, the results are wrong)."""


@dataclass(frozen=True)
class JobRow:
    name: str
    kind: str  # NOOP, NOTIFY or SWEEP
    size: int  # jobs, notifications or clocks
    workers: int = 0
    compare_to: str | None = None  # the rq-noop row whose rate this row's is divided by
    about: str = ""


def _workers(count: int) -> str:
    return f"{count} `sandan worker` process" + ("" if count == 1 else "es")


def sweep_name(clocks: int) -> str:
    """The sweep row's name carries its size: sla-sweep-100k, sla-sweep-10k."""
    return f"sla-sweep-{clocks // 1000}k" if clocks % 1000 == 0 else f"sla-sweep-{clocks}"


def job_rows(quick: bool = False) -> list[JobRow]:
    """Every job row, at the full size or the --quick one."""
    n = JOBS_QUICK if quick else JOBS_FULL
    clocks = CLOCKS_QUICK if quick else CLOCKS_FULL
    rows = [
        JobRow(
            f"rq-noop-{w}w",
            NOOP,
            n,
            w,
            about=f"{n:,} empty jobs enqueued straight to RQ, drained by {_workers(w)}",
        )
        for w in (1, 2)
    ]
    rows += [
        JobRow(
            f"notify-{w}w",
            NOTIFY,
            n,
            w,
            compare_to=f"rq-noop-{w}w",
            about=f"{n:,} notifications committed at once, relayed and sent to the fake WeChat server by "
            f"{_workers(w)}",
        )
        for w in (1, 2)
    ]
    rows.append(
        JobRow(
            sweep_name(clocks),
            SWEEP,
            clocks,
            about=f"clocks.sweep over {clocks:,} open SLA clocks after Redis lost every card job; "
            "again in steady state; and a full rebuild",
        )
    )
    return rows


def select_job_rows(rows: list[JobRow], only: list[str]) -> list[JobRow]:
    """Rows whose name contains any of `only` (all rows when empty), plus the rq-noop rows they compare to."""
    if not only:
        return list(rows)
    wanted = {r.name for r in rows if any(o.lower() in r.name.lower() for o in only)}
    wanted |= {r.compare_to for r in rows if r.name in wanted and r.compare_to}
    return [r for r in rows if r.name in wanted]


# Results


@dataclass
class Measure:
    label: str  # what was counted and timed
    count: int
    seconds: float
    rate: bool = True  # whether count / seconds is worth printing

    @property
    def per_second(self) -> float | None:
        return self.count / self.seconds if self.rate and self.seconds > 0 else None


@dataclass
class JobResult:
    row: JobRow
    measures: list[Measure] = field(default_factory=list)
    error: str | None = None
    baseline_rate: float | None = None
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # extra numbers for the JSON

    @property
    def rate(self) -> float | None:
        return self.measures[0].per_second if self.measures and self.row.kind != SWEEP else None

    @property
    def ratio(self) -> float | None:
        if self.rate is None or not self.baseline_rate:
            return None
        return self.rate / self.baseline_rate


def attach_baselines(results: list[JobResult]) -> None:
    """Give every row that compares to an rq-noop row that row's rate from the same run."""
    rates = {r.row.name: r.rate for r in results if r.error is None}
    for r in results:
        if r.row.compare_to:
            r.baseline_rate = rates.get(r.row.compare_to)


def jobs_table(results: list[JobResult]) -> str:
    """The job rows as a table in the HTTP table's style; the sweep takes one line per measurement."""
    headers = ["row", "workers", "measured", "count", "seconds", "per s", "compared to", "ratio"]
    body = []
    for r in results:
        name = r.row.name + (" !" if r.error else "")
        workers = str(r.row.workers) if r.row.workers else "-"
        if not r.measures:
            body.append([name, workers, "failed", "-", "-", "-", r.row.compare_to or "-", "-"])
        for i, m in enumerate(r.measures):
            first = i == 0
            body.append(
                [
                    name if first else "",
                    workers if first else "",
                    m.label,
                    f"{m.count:,}",
                    f"{m.seconds:,.3f}" if m.seconds < 10 else f"{m.seconds:,.1f}",
                    _num(m.per_second, 1),
                    (r.row.compare_to or "-") if first else "",
                    ("-" if r.ratio is None else f"{r.ratio:.2f}x") if first else "",
                ]
            )
    table = format_table(headers, body, right={1, 3, 4, 5, 7})
    notes = []
    for r in results:
        if r.error:
            notes.append(f"! {r.row.name}: {r.error}")
        notes += [f"  {r.row.name}: {note}" for note in r.notes]
    return table + ("\n" + "\n".join(notes) if notes else "")


def jobs_header(log_dir: Path) -> list[str]:
    return [
        "Job rows: `sandan worker` processes (RQ's forking worker, scheduler, outbox relay) on PostgreSQL",
        "timed from enqueue (no-op) or commit (notify), workers already up, to the last job done / sent",
        "ratio = the row's per s / per s of the rq-noop row in 'compared to' (same run, same worker count)",
        f"worker logs: {log_dir}/worker-<row>-<n>.log",
    ]


def job_result_json(r: JobResult) -> dict:
    return {
        "name": r.row.name,
        "kind": r.row.kind,
        "size": r.row.size,
        "workers": r.row.workers or None,
        "about": r.row.about,
        "compared_to": r.row.compare_to,
        "error": r.error,
        "notes": r.notes,
        "measures": [
            {"label": m.label, "count": m.count, "seconds": m.seconds, "per_second": m.per_second}
            for m in r.measures
        ],
        "per_second": r.rate,
        "baseline_per_second": r.baseline_rate,
        "ratio": r.ratio,
        **r.details,
    }


def sends_from_stats(payload: dict) -> int:
    """Subscribe-message calls the fake WeChat server has counted, from its /_mock/stats answer."""
    try:
        return int(payload["calls"]["subscribe_send"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JobRowError(f"unexpected /_mock/stats answer: {payload!r}") from exc


# Worker processes


class Workers:
    """`sandan worker` processes for one row, stopped (warm, then killed with their children) on exit."""

    def __init__(self, count: int, env: dict[str, str], log_dir: Path, name: str):
        self.count = count
        self.env = env
        self.log_paths = [log_dir / f"worker-{name}-{i + 1}.log" for i in range(count)]
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, connection: redis.Redis) -> float:
        """Start the processes and wait until each has registered with RQ; return the seconds that took."""
        from rq import Worker

        started = time.perf_counter()
        for path in self.log_paths:
            with open(path, "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "backend.cli", "worker"],
                        cwd=REPO_ROOT,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = started + WORKER_READY_TIMEOUT
        while time.perf_counter() < deadline:
            self.check_alive()
            if len(Worker.all(connection=connection)) >= self.count:
                return time.perf_counter() - started
            time.sleep(0.1)
        raise JobRowError(
            f"{self.count} worker(s) not registered with RQ after {WORKER_READY_TIMEOUT} s:\n" + self._tails()
        )

    def check_alive(self) -> None:
        for proc, path in zip(self.procs, self.log_paths, strict=False):
            if proc.poll() is not None:
                raise JobRowError(f"worker {proc.pid} exited with {proc.returncode}:\n" + _log_tail(path))

    def _tails(self) -> str:
        return "\n".join(f"--- {p.name}\n{_log_tail(p, 15)}" for p in self.log_paths)

    def stop(self) -> None:
        # All asked at once, then waited on: an idle worker's warm shutdown is immediate.
        children = {proc.pid: children_of(proc.pid) for proc in self.procs if proc.poll() is None}
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if _stop_process(proc, timeout=WORKER_STOP_TIMEOUT):
                # Killed rather than stopped: its scheduler process (and a work horse) would outlive it.
                for pid in children.get(proc.pid, []) + children_of(proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        self.procs = []


def wait_for(done: Callable[[], int], target: int, workers: Workers, what: str) -> int:
    """Poll done() until it reaches target; fail when a worker dies or nothing moves for STALL_SECONDS."""
    last, last_change = -1, time.perf_counter()
    while True:
        value = done()
        if value >= target:
            return value
        now = time.perf_counter()
        if value != last:
            last, last_change = value, now
        elif now - last_change > STALL_SECONDS:
            raise JobRowError(
                f"stalled: {value:,} of {target:,} {what} after {STALL_SECONDS} s without progress"
            )
        workers.check_alive()
        time.sleep(POLL_SECONDS)


# The rows


@dataclass
class Context:
    app: object  # the Flask app, built in this process from the bench environment
    env: dict[str, str]  # what the workers get
    fake: FakeWeChatProcess
    redis_url: str
    log_dir: Path
    log: Callable[[str], None]

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=30)


def _settle_outbox(ctx: Context) -> int:
    """Mark whatever earlier rows left unfinished in the outbox done, so a row relays its own work only."""
    from sqlalchemy import update

    from backend import clock
    from backend.db import db
    from backend.outbox.models import OutboxMessage

    with ctx.app.app_context():
        now = clock.now()
        settled = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.done_at.is_(None))
            .values(done_at=now, sent_at=db.func.coalesce(OutboxMessage.sent_at, now))
        ).rowcount
        db.session.commit()
    return settled


def measure_noop(row: JobRow, ctx: Context) -> JobResult:
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    # The order rows leave thousands of announcements in the outbox; a worker would relay and run them
    # between the no-op jobs.
    settled = _settle_outbox(ctx)
    conn = ctx.redis()
    queue = Queue("default", connection=conn)
    finished = FinishedJobRegistry(queue=queue)
    failed = FailedJobRegistry(queue=queue)
    result = JobResult(row)
    with Workers(row.workers, ctx.env, ctx.log_dir, row.name) as workers:
        ready = workers.start(conn)
        jobs = [Queue.prepare_data(NOOP_FUNC, result_ttl=3600) for _ in range(row.size)]
        started = time.perf_counter()
        queue.enqueue_many(jobs)
        enqueued = time.perf_counter() - started
        wait_for(
            lambda: finished.get_job_count(cleanup=False) + failed.get_job_count(cleanup=False),
            row.size,
            workers,
            "jobs done",
        )
        seconds = time.perf_counter() - started
    conn.close()
    n_failed = failed.get_job_count(cleanup=False)
    result.measures.append(Measure("jobs done", row.size - n_failed, seconds))
    result.notes.append(
        f"workers up in {ready:.1f} s (not timed); enqueue_many took {enqueued:.3f} s"
        + (f"; {settled:,} outbox messages left by earlier rows settled first" if settled else "")
    )
    result.details.update(workers_ready_s=ready, enqueue_s=enqueued, failed=n_failed, settled=settled)
    if n_failed:
        result.error = f"{n_failed:,} of {row.size:,} no-op jobs failed (see the worker logs)"
    return result


def _users_with_grants(ctx: Context, count: int) -> list[int]:
    """`count` new users with an openid and one grant each for the event's template (Core bulk inserts)."""
    from backend.auth.models import User
    from backend.db import db, new_public_id
    from backend.notify.models import NotificationTemplate, SubscriptionGrant

    tag = new_public_id("b")
    with ctx.app.app_context():
        template_id = db.session.scalar(
            sa.select(NotificationTemplate.template_id).where(NotificationTemplate.event == NOTIFY_EVENT)
        )
        if template_id is None:
            raise JobRowError(f"no WeChat template for {NOTIFY_EVENT!r}: did `sandan migrate` seed them?")
        users = [
            {"public_id": new_public_id("u"), "openid": f"bench-{tag}-{i}", "nickname": f"压测{i}"}
            for i in range(count)
        ]
        with db.engine.begin() as conn:
            ids = list(
                conn.scalars(
                    sa.insert(User.__table__).returning(User.__table__.c.id, sort_by_parameter_order=True),
                    users,
                )
            )
            conn.execute(
                sa.insert(SubscriptionGrant.__table__),
                [{"user_id": uid, "template_id": template_id, "remaining": 1} for uid in ids],
            )
    return ids


def measure_notify(row: JobRow, ctx: Context) -> JobResult:
    from backend.db import db
    from backend.notify import service as notify
    from backend.notify.models import Notification

    settled = _settle_outbox(ctx)
    user_ids = _users_with_grants(ctx, row.size)
    session = requests.Session()

    def sends() -> int:
        try:
            response = session.get(ctx.fake.url + "_mock/stats", timeout=10)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise JobRowError(f"fake WeChat server: {exc}") from exc
        return sends_from_stats(response.json())

    result = JobResult(row)
    conn = ctx.redis()
    with Workers(row.workers, ctx.env, ctx.log_dir, row.name) as workers:
        ready = workers.start(conn)
        before = sends()
        with ctx.app.app_context():
            recording = time.perf_counter()
            ids = [
                notify.notify(
                    user_id=uid,
                    event=NOTIFY_EVENT,
                    fields={"subject": "楼道灯维修", "number": f"B{i:06d}", "note": "压测通知"},
                    page="pages/orders/detail",
                ).id
                for i, uid in enumerate(user_ids)
            ]
            db.session.flush()
            started = time.perf_counter()
            db.session.commit()
        recorded = started - recording
        wait_for(lambda: sends() - before, row.size, workers, "notifications at the fake WeChat server")
        seconds = time.perf_counter() - started
        calls = sends() - before
        # The last jobs commit just after their call; give them a moment before reading the outcome.
        deadline = time.perf_counter() + 10
        while True:
            with ctx.app.app_context():
                statuses = dict(
                    db.session.execute(
                        sa.select(Notification.status, sa.func.count())
                        .where(Notification.id.in_(ids))
                        .group_by(Notification.status)
                    ).all()
                )
            if statuses.get("sent", 0) >= row.size or time.perf_counter() > deadline:
                break
            time.sleep(0.1)
    conn.close()
    result.measures.append(Measure("notifications sent", row.size, seconds))
    result.notes.append(
        f"workers up in {ready:.1f} s, {row.size:,} notify() calls in {recorded:.1f} s (neither timed)"
        + (f"; {settled:,} outbox messages left by earlier rows settled first" if settled else "")
    )
    result.details.update(
        workers_ready_s=ready, record_s=recorded, wechat_calls=calls, statuses=statuses, settled=settled
    )
    problems = []
    if calls != row.size:
        problems.append(f"the fake WeChat server had {calls:,} calls for {row.size:,} notifications")
    if statuses.get("sent", 0) != row.size:
        problems.append(f"statuses {statuses}")
    if problems:
        result.error = "; ".join(problems)
    return result


def sweep_data(
    *, clocks: int, now: datetime, horizon: timedelta, seed: int = 3
) -> Iterator[tuple[dict, list[dict]]]:
    """(clock, [its two card messages]) rows: open clocks due over the next four weeks, NEAR_SHARE of them
    with a card job due within the horizon; nothing due before `now`, so the sweep raises no card.

    Messages are dicts without ``args`` (the clock id is known only once inserted).
    """
    rng = random.Random(seed)
    near = max(2, round(clocks * NEAR_SHARE))
    day = timedelta(days=1)
    margin = timedelta(seconds=15)
    for i in range(clocks):
        warned_at = None
        if i < near // 2:  # the yellow card's job is due within the horizon
            warn = now + margin + (horizon - 2 * margin) * rng.random()
            due = warn + day
        elif i < near:  # warned a day ago; the red card's job is due within the horizon
            due = now + margin + (horizon - 2 * margin) * rng.random()
            warn = warned_at = due - day
        else:  # both cards due later, over the next four weeks
            due = now + day + timedelta(minutes=10) + timedelta(days=27) * rng.random()
            warn = due - day
        started = due - timedelta(days=5)
        clock = {
            "subject_type": "bench_item",
            "subject_id": i + 1,
            "name": "complete",
            "amount": Decimal(5),
            "unit": "working_days",
            "escalates": True,
            "state": "running",
            "started_at": started,
            "pauses": [],
            "due_at": due,
            "warn_at": warn,
            "assumed_years": [],
            "warned_at": warned_at,
            "generation": 1,
            "created_at": started,
        }
        messages = [
            {
                "job": "sla.warn",
                "queue": "high",
                "run_at": warn,
                "created_at": started,
                "sent_at": started,
                "attempts": 0,
                "next_attempt_at": started,
                "done_at": warned_at,
            },
            {
                "job": "sla.overdue",
                "queue": "high",
                "run_at": due,
                "created_at": started,
                "sent_at": started,
                "attempts": 0,
                "next_attempt_at": started,
                "done_at": None,
            },
        ]
        yield clock, messages


def _load_clocks(ctx: Context, clocks: int, now: datetime, horizon: timedelta) -> dict:
    from backend.community.models import Community, Street
    from backend.db import db, new_public_id
    from backend.outbox.models import OutboxMessage
    from backend.sla.models import SlaClock

    clock_table, message_table = SlaClock.__table__, OutboxMessage.__table__
    in_flight = near = 0
    with ctx.app.app_context():
        with db.engine.begin() as conn:
            street_id = conn.scalar(
                sa.insert(Street.__table__)
                .values(public_id=new_public_id("st"), name=f"压测街道-{new_public_id('x')}")
                .returning(Street.__table__.c.id)
            )
            community_id = conn.scalar(
                sa.insert(Community.__table__)
                .values(public_id=new_public_id("cm"), street_id=street_id, name="压测社区")
                .returning(Community.__table__.c.id)
            )
            rows = sweep_data(clocks=clocks, now=now, horizon=horizon)
            while chunk := list(itertools.islice(rows, INSERT_CHUNK)):
                # Ids taken from the table's own sequence: an executemany without RETURNING is 3x faster.
                ids = list(conn.scalars(NEXT_CLOCK_IDS, {"n": len(chunk)}))
                conn.execute(
                    sa.insert(clock_table),
                    [
                        {**clock, "id": clock_id, "community_id": community_id}
                        for clock_id, (clock, _) in zip(ids, chunk, strict=True)
                    ],
                )
                messages = []
                for clock_id, (_, pair) in zip(ids, chunk, strict=True):
                    for m in pair:
                        messages.append({**m, "args": {"clock_id": clock_id, "generation": 1}})
                        if m["done_at"] is None:
                            in_flight += 1
                            near += m["run_at"] <= now + horizon
                conn.execute(sa.insert(message_table), messages)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE sla_clocks"))
            conn.execute(sa.text("ANALYZE outbox_messages"))
    return {"clocks": clocks, "in_flight": in_flight, "near": near}


def measure_sweep(row: JobRow, ctx: Context) -> JobResult:
    from backend import clock
    from backend.db import db
    from backend.outbox import service as outbox
    from backend.sla import clocks

    horizon = clocks.SWEEP_HORIZON
    now = clock.now()
    conn = ctx.redis()
    settled = _settle_outbox(ctx)
    with ctx.app.app_context():
        # Earlier rows' running clocks (the order rows' SLA clocks) go on counting down while the rows run:
        # the cards that fell due meanwhile are raised now, untimed, so the measured sweeps see only this
        # row's clocks, none of which is due. Raising them records notifications; settled like the rest.
        clocks.sweep(connection=conn, now=now)
    settled += _settle_outbox(ctx)
    loading = time.perf_counter()
    loaded = _load_clocks(ctx, row.size, now, horizon)
    load_s = time.perf_counter() - loading
    ctx.log(f"  {row.size:,} clocks and {loaded['in_flight']:,} in-flight card jobs loaded in {load_s:.1f} s")
    flush_redis(ctx.redis_url)
    result = JobResult(row)
    with ctx.app.app_context():
        db.session.execute(sa.text("SELECT 1"))  # a warm connection, as a running worker has
        db.session.commit()
        # Every sweep is told it is `now`, the instant the clocks were laid out from, however long loading
        # took: what is due within the horizon stays the same.
        cold = clocks.sweep(connection=conn, now=now)
        relaying = time.perf_counter()
        relayed = outbox.relay_all(connection=conn)
        relay_s = time.perf_counter() - relaying
        steady = clocks.sweep(connection=conn, now=now)
        flush_redis(ctx.redis_url)
        rebuilding = time.perf_counter()
        rebuilt = outbox.rebuild_lost(connection=conn, horizon=None, now=now)
        rebuild_s = time.perf_counter() - rebuilding
    conn.close()
    result.measures += [
        Measure("sweep, Redis flushed: jobs re-sent", cold.resent, cold.seconds, rate=False),
        Measure("sweep again (steady): jobs re-sent", steady.resent, steady.seconds, rate=False),
        Measure("full rebuild (no horizon): re-sent", rebuilt, rebuild_s, rate=False),
    ]
    minutes = horizon.total_seconds() / 60
    result.notes.append(
        f"{row.size:,} running clocks, {loaded['in_flight']:,} card jobs in flight, "
        f"{loaded['near']:,} of them due within the {minutes:g} min horizon; the re-sent jobs reached RQ "
        f"again in {relay_s:.3f} s before the steady sweep (data loaded in {load_s:.1f} s, not timed)"
    )
    result.details.update(
        loaded,
        horizon_s=horizon.total_seconds(),
        load_s=load_s,
        relayed=relayed.sent,
        relay_s=relay_s,
        settled=settled,
        cards_raised=cold.warnings + cold.overdue + steady.warnings + steady.overdue,
    )
    problems = []
    if cold.resent != loaded["near"]:
        problems.append(f"the first sweep re-sent {cold.resent:,} jobs, not the {loaded['near']:,} due soon")
    if steady.resent:
        problems.append(f"the steady sweep re-sent {steady.resent:,} jobs")
    if rebuilt != loaded["in_flight"]:
        problems.append(f"the full rebuild re-sent {rebuilt:,} of {loaded['in_flight']:,} jobs in flight")
    if result.details["cards_raised"]:
        problems.append(f"{result.details['cards_raised']} cards raised (nothing was due)")
    if problems:
        result.error = "; ".join(problems)
    return result


MEASURE = {NOOP: measure_noop, NOTIFY: measure_notify, SWEEP: measure_sweep}


@contextlib.contextmanager
def bench_app(env: dict[str, str]):
    """The app built in this process from the bench environment (what the workers read), as they build it."""
    from backend import create_app
    from backend.db import db

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        app = create_app()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


def worker_env(env: dict[str, str]) -> dict[str, str]:
    """The harness's app environment, worker settings at their defaults, and the no-op importable."""
    out = {
        k: v
        for k, v in env.items()
        if not k.startswith("SANDAN_WORKER_") and k != "SANDAN_JOB_RETRY_INTERVALS"
    }
    out["SANDAN_WORKER_IMPORTS"] = "bench.jobs"
    return out


def run_job_rows(
    rows: list[JobRow],
    *,
    env: dict[str, str],
    fake: FakeWeChatProcess,
    redis_url: str,
    log_dir: Path,
    log: Callable[[str], None],
) -> list[JobResult]:
    """Measure each row in turn on a flushed Redis; a row that fails is marked and the next one runs."""
    results = []
    with bench_app(env) as app:
        ctx = Context(app, worker_env(env), fake, redis_url, log_dir, log)
        for row in rows:
            log(f"measuring {row.name} ({row.about})")
            flush_redis(redis_url)
            try:
                result = MEASURE[row.kind](row, ctx)
            except JobRowError as exc:
                result = JobResult(row, error=" ".join(str(exc).split())[:600])
            if result.error:
                log(f"  {row.name}: {result.error}")
            results.append(result)
    flush_redis(redis_url)
    attach_baselines(results)
    return results
