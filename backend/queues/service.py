"""What the job queues hold, the failed jobs street admins see and requeue, and dashboard passes.

Every function takes a Redis connection and plain arguments; a Redis that does not answer becomes
ServiceUnavailable (503), never a 500. The failed registry is RQ's own: a job lands there once its retries
are spent, or when it was abandoned (its worker died) with none left.
"""

import base64
import binascii
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from rq import Queue, Worker
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, parse_job_id, validate_job_id
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from backend import clock
from backend.auth.principals import Principal, live_principal
from backend.db import db
from backend.errors import NotFound, ServiceUnavailable, Unauthorized, ValidationFailed
from backend.outbox.models import OutboxMessage
from backend.outbox.service import QUEUES, RUNNER

log = logging.getLogger(__name__)

TRACEBACK_LINES = 12
DASHBOARD_SALT = "sandan.queues.dashboard"


@contextmanager
def _redis_answers() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        log.warning("queues: redis unavailable: %s: %s", type(exc).__name__, exc)
        raise ServiceUnavailable("任务队列暂时无法访问，请稍后再试", code="queue_unavailable") from exc


# -- overview ---------------------------------------------------------------------------------------------


def queue_stats(*, connection: redis.Redis) -> list[dict]:
    """Count each queue's jobs by state, and the live workers listening on it."""
    with _redis_answers():
        stats = []
        for name in QUEUES:
            queue = Queue(name, connection=connection)
            stats.append(
                {
                    "name": name,
                    "queued": queue.count,
                    # cleanup=False: reading the counts never moves a job; workers do that.
                    "started": queue.started_job_registry.get_job_count(cleanup=False),
                    "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
                    "deferred": queue.deferred_job_registry.get_job_count(cleanup=False),
                    "failed": queue.failed_job_registry.get_job_count(cleanup=False),
                    # Worker.all skips registrations whose heartbeat expired (a killed worker's).
                    "workers": len(Worker.all(queue=queue)),
                }
            )
        return stats


# -- failed jobs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Position:
    """A failed job's place in the list: newest failure first, then queue, then job id."""

    score: float
    queue: str
    job_id: str

    def key(self) -> tuple:
        return (-self.score, self.queue, self.job_id)


def _encode_cursor(position: _Position) -> str:
    raw = json.dumps([position.score, position.queue, position.job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> _Position:
    try:
        score, queue, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        position = _Position(float(score), str(queue), str(job_id))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("分页游标无效", details={"cursor": ["无效的游标"]}) from exc
    # json reads NaN and Infinity, which no cursor of ours holds; Redis refuses NaN as a score bound.
    if not math.isfinite(position.score):
        raise ValidationFailed("分页游标无效", details={"cursor": ["无效的游标"]})
    return position


def _positions(connection: redis.Redis, limit: int, after: _Position | None) -> list[_Position]:
    """The next ``limit + 1`` positions after the cursor, merged across the queues' failed registries."""
    found: list[_Position] = []
    for name in QUEUES:
        key = FailedJobRegistry(name, connection=connection).key
        top = "+inf" if after is None else after.score
        # Scores are whole seconds, so many jobs may share the cursor's: fetch past all of them.
        ties = 0 if after is None else connection.zcount(key, after.score, after.score)
        rows = connection.zrevrangebyscore(key, top, "-inf", start=0, num=limit + 1 + ties, withscores=True)
        for member, score in rows:
            position = _Position(score, name, member.decode() if isinstance(member, bytes) else member)
            if after is None or position.key() > after.key():
                found.append(position)
    found.sort(key=_Position.key)
    return found[: limit + 1]


def _traceback_tail(text: str | None) -> str | None:
    if not text:
        return None
    return "\n".join(text.rstrip().splitlines()[-TRACEBACK_LINES:])


def _describe(job: Job, position: _Position) -> dict:
    try:
        args = job.args
        func_name = job.func_name
    except DeserializationError:
        args, func_name = (), None
    result = job.latest_result()
    failed_at = result.created_at if result is not None and result.exc_string else job.ended_at
    if failed_at is None:  # the registry's score is the failure time plus the job's failure TTL
        failed_at = datetime.fromtimestamp(position.score, UTC) - timedelta(seconds=job.failure_ttl or 0)
    message_id = args[0] if func_name == RUNNER and args and isinstance(args[0], int) else None
    return {
        "job_id": job.id,
        "queue": position.queue,
        "description": job.description,
        "function": func_name,
        "outbox_message_id": message_id,
        "job_name": None,
        "traceback": _traceback_tail(result.exc_string if result is not None else None),
        "failed_at": failed_at if failed_at.tzinfo else failed_at.replace(tzinfo=UTC),
        "retries_left": job.retries_left or 0,
        "requeued_by": job.meta.get("requeued_by", []),
    }


def list_failed(*, connection: redis.Redis, limit: int = 20, cursor: str | None = None) -> dict:
    """List failed jobs across the queues, newest failure first, naming their outbox message if any."""
    after = _decode_cursor(cursor) if cursor else None
    with _redis_answers():
        positions = _positions(connection, limit, after)
        more = len(positions) > limit
        positions = positions[:limit]
        jobs = Job.fetch_many([p.job_id for p in positions], connection=connection)
    items = [_describe(job, p) for job, p in zip(jobs, positions, strict=True) if job is not None]
    message_ids = {i["outbox_message_id"] for i in items if i["outbox_message_id"] is not None}
    if message_ids:
        names = dict(
            db.session.execute(
                select(OutboxMessage.id, OutboxMessage.job).where(OutboxMessage.id.in_(message_ids))
            ).all()
        )
        for item in items:
            item["job_name"] = names.get(item["outbox_message_id"])
    return {"items": items, "next_cursor": _encode_cursor(positions[-1]) if more and positions else None}


def _requeue(connection: redis.Redis, job: Job, actor: Principal) -> None:
    """Put one failed job back on its queue, noting who did it on the job and in the log."""
    requeued = list(job.meta.get("requeued_by", []))
    requeued.append({"user_id": actor.public_id, "at": clock.now().isoformat()})
    job.meta["requeued_by"] = requeued[-10:]
    job.save_meta()
    FailedJobRegistry(job.origin, connection=connection).requeue(job)
    log.info(
        "queues: %s requeued failed job %s (queue %s, %s)",
        actor.public_id,
        job.id,
        job.origin,
        job.description,
    )


def job_status(*, connection: redis.Redis, job_id: str) -> str | None:
    """The status of the job an id names (or one of its executions names), or None when there is none."""
    try:
        job_id = parse_job_id(job_id)
        # RQ refuses to even look up an id it could never have made (ValueError): no job has one.
        validate_job_id(job_id)
    except ValueError:
        return None
    with _redis_answers():
        try:
            return Job.fetch(job_id, connection=connection).get_status(refresh=False).value
        except NoSuchJobError:
            return None


def requeue_failed(*, connection: redis.Redis, job_id: str, actor: Principal) -> Job:
    """Requeue one failed job of our queues; NotFound when it is not in a failed registry."""
    missing = NotFound(
        "失败任务不存在，或已重新排队", code="failed_job_not_found", details={"job_id": job_id}
    )
    with _redis_answers():
        try:
            # RQ refuses to look up an id it could never have made: no failed job has one either.
            validate_job_id(parse_job_id(job_id))
        except ValueError:
            raise missing from None
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            raise missing from None
        if job.origin not in QUEUES or job.id not in FailedJobRegistry(job.origin, connection=connection):
            raise missing
        try:
            _requeue(connection, job, actor)
        except InvalidJobOperation:  # another admin requeued it in between
            raise missing from None
        return job


def requeue_all_failed(*, connection: redis.Redis, actor: Principal) -> int:
    """Requeue every failed job of every queue; return how many went back."""
    count = 0
    with _redis_answers():
        for name in QUEUES:
            registry = FailedJobRegistry(name, connection=connection)
            for job in Job.fetch_many(registry.get_job_ids(cleanup=False), connection=connection):
                if job is None:
                    continue
                try:
                    _requeue(connection, job, actor)
                except InvalidJobOperation:
                    continue
                count += 1
    log.info("queues: %s requeued all failed jobs: %d", actor.public_id, count)
    return count


# -- dashboard passes -----------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=DASHBOARD_SALT)


def issue_dashboard_pass(*, principal: Principal, ttl: int) -> tuple[str, datetime]:
    """A signed pass to the queue dashboard naming the signed-in session; it dies with the session."""
    token = _serializer().dumps({"sid": principal.session_public_id, "sub": principal.public_id})
    return token, clock.now() + timedelta(seconds=ttl)


def read_dashboard_pass(token: str, *, ttl: int) -> Principal:
    """Who a dashboard pass names, while their session lives; Unauthorized otherwise."""
    invalid = Unauthorized("队列看板登录凭证无效", code="dashboard_pass_invalid")
    try:
        claims = _serializer().loads(token, max_age=ttl)
    except SignatureExpired as exc:
        raise Unauthorized("队列看板登录已过期，请重新进入", code="dashboard_pass_expired") from exc
    except BadSignature as exc:
        raise invalid from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("sid"), str):
        raise invalid
    return live_principal(
        session_public_id=claims["sid"], user_public_id=str(claims.get("sub")), invalid=invalid
    )
