"""SLA clocks on tracked items: start, pause, resume, extend and stop them; raise the yellow and red cards.

A clock's row is the truth. Every change recomputes its due and warning times from the working calendar and
records (through the outbox, in the caller's transaction) a warning job and an overdue job for that moment,
stamped with the clock's new generation; a job whose generation is stale, or whose card is already raised,
changes nothing. The periodic sweep re-sends jobs that Redis lost before they fall due and raises any card
whose moment passed without its job, so a flushed Redis still warns on time.
"""

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import func, select

from backend import clock as wall
from backend.auth.roles import Role, ScopeType
from backend.auth.service import members_with_role
from backend.community.models import Community
from backend.db import db
from backend.errors import Conflict
from backend.notify.service import notify_many
from backend.organizations.models import Organization
from backend.outbox import service as outbox
from backend.sla import subjects
from backend.sla.calendar import Unit
from backend.sla.models import NO_DEADLINE, SlaClock
from backend.sla.rules import UNIT_LABELS, Limit, warning_at
from backend.sla.service import load_calendar
from backend.supervision import service as supervision

log = logging.getLogger(__name__)

WARN_JOB = "sla.warn"
OVERDUE_JOB = "sla.overdue"
# The sweep re-sends lost jobs due within this window; it runs every minute, so the window overlaps.
SWEEP_HORIZON = timedelta(minutes=3)
# A card whose moment passed this long ago without its job is raised by the sweep itself.
SWEEP_GRACE = timedelta(seconds=30)


# Changing clocks


def start(
    *,
    subject_type: str,
    subject_id: int,
    name: str,
    limit: Limit,
    community_id: int,
    organization_id: int | None = None,
    at: datetime | None = None,
    escalates: bool = True,
) -> SlaClock:
    """Start a clock on a tracked item and schedule its cards; the caller commits."""
    clock = SlaClock(
        subject_type=subject_type,
        subject_id=subject_id,
        name=name,
        community_id=community_id,
        organization_id=organization_id,
        amount=limit.amount,
        unit=str(limit.unit),
        state="running",
        escalates=escalates,
        started_at=at or wall.now(),
        pauses=[],
        generation=0,
    )
    db.session.add(clock)
    db.session.flush()
    _reschedule(clock)
    return clock


def show_deadline(item, clock: SlaClock | None) -> None:
    """Copy the clock's deadline, and when its warning comes, onto the order or errand it times (boards
    sort by the one and colour by both); no deadline when no clock runs (none, or a paused one)."""
    running = clock is not None and clock.due_at is not None
    item.due_at = clock.due_at if running else NO_DEADLINE
    item.warn_at = clock.warn_at if running else None


def current(*, subject_type: str, subject_id: int, name: str) -> SlaClock | None:
    """Return the item's open clock of that name (running or paused), if any."""
    return db.session.scalar(
        select(SlaClock)
        .where(
            SlaClock.subject_type == subject_type,
            SlaClock.subject_id == subject_id,
            SlaClock.name == name,
            SlaClock.state != "stopped",
        )
        .order_by(SlaClock.id.desc())
        .limit(1)
    )


def clocks_of(*, subject_type: str, subject_id: int) -> list[SlaClock]:
    """Return every clock an item has had, oldest first."""
    return list(
        db.session.scalars(
            select(SlaClock)
            .where(SlaClock.subject_type == subject_type, SlaClock.subject_id == subject_id)
            .order_by(SlaClock.id)
        )
    )


def pause(*, clock: SlaClock, at: datetime | None = None) -> SlaClock:
    """Stop the clock running (waiting on the resident); its cards wait with it."""
    if clock.state != "running":
        raise Conflict("计时未在进行，不能暂停", details={"state": clock.state})
    clock.pauses = [*clock.pauses, [_iso(at or wall.now()), None]]
    clock.state = "paused"
    _reschedule(clock)
    return clock


def resume(*, clock: SlaClock, at: datetime | None = None) -> SlaClock:
    """Run the clock again; the due time moves back by the paused working time."""
    if clock.state != "paused":
        raise Conflict("计时未暂停，不能恢复", details={"state": clock.state})
    pauses = [list(p) for p in clock.pauses]
    pauses[-1][1] = _iso(at or wall.now())
    clock.pauses = pauses
    clock.state = "running"
    _reschedule(clock)
    return clock


def restart(*, clock: SlaClock, at: datetime) -> SlaClock:
    """Run a clock that has not yet begun from another moment (the visit it waits for was moved): its due
    and warning times follow, and jobs scheduled for the old ones become no-ops. Refused (Conflict) for a
    clock already running: its time so far stands."""
    if clock.state != "running" or clock.started_at <= wall.now() or clock.overdue_at is not None:
        raise Conflict("计时已开始，不能改变起点", details={"state": clock.state})
    clock.started_at = at
    clock.warned_at = None
    _reschedule(clock)
    return clock


def past_due(clock: SlaClock) -> bool:
    """Whether the clock's deadline has passed. The red card may not be raised yet (its job runs at the due
    time, the sweep a minute later, neither while Redis is down): the deadline itself decides."""
    return clock.overdue_at is not None or (clock.due_at is not None and clock.due_at <= wall.now())


def extension_refusal(*, clock: SlaClock, limit: Limit, allowed: Limit | None) -> Conflict | None:
    """Why ``extend`` would refuse this extension (the Conflict it raises), or None; asked before offering
    to grant one, so that the offer is not refused."""
    if clock.state == "stopped":
        return Conflict("计时已结束，不能延期", details={"state": clock.state})
    if clock.extension_amount is not None:
        return Conflict("已延期过一次，不能再次延期", details={"extension": "used"})
    if allowed is None:
        return Conflict("该类服务不允许延期", details={"extension": "not_allowed"})
    if clock.overdue_at is not None:
        return Conflict("已超时，不能再申请延期", details={"overdue_at": _iso(clock.overdue_at)})
    if past_due(clock):  # the red card not raised yet: a late approval would erase the overdue
        return Conflict("已超时，不能再申请延期", details={"due_at": _iso(clock.due_at)})
    if limit.unit != Unit(clock.unit):
        # effective_limit adds the extension to the clock's own amount: another unit cannot be added.
        unit = UNIT_LABELS[Unit(clock.unit)].removeprefix("个")
        return Conflict(f"延期须与办结时限同样按{unit}计算", details={"extension": "unit"})
    if limit.unit != allowed.unit or limit.amount > allowed.amount:
        return Conflict(f"延期不能超过{allowed.label()}", details={"extension": "too_long"})
    return None


def extend(*, clock: SlaClock, limit: Limit, allowed: Limit | None) -> SlaClock:
    """Grant the clock's one extension of ``limit``, which may not exceed what the policy ``allowed``."""
    refused = extension_refusal(clock=clock, limit=limit, allowed=allowed)
    if refused is not None:
        raise refused
    clock.extension_amount = limit.amount
    clock.extension_unit = str(limit.unit)
    # A new deadline earns a new yellow card before it.
    clock.warned_at = None
    _reschedule(clock)
    return clock


def stop(*, clock: SlaClock, reason: str = "met", at: datetime | None = None) -> SlaClock:
    """Stop the clock for good: the item left the state it timed. Pending card jobs become no-ops."""
    if clock.state == "stopped":
        return clock
    at = at or wall.now()
    if clock.state == "paused":
        pauses = [list(p) for p in clock.pauses]
        pauses[-1][1] = _iso(at)
        clock.pauses = pauses
    clock.state = "stopped"
    clock.stopped_at = at
    clock.stop_reason = reason
    clock.on_time = clock.overdue_at is None and (clock.due_at is None or at <= clock.due_at)
    clock.generation += 1
    on_stopped = subjects.get(clock.subject_type).on_stopped
    if on_stopped is not None:
        on_stopped(clock)
    return clock


def stop_all(*, subject_type: str, subject_id: int, reason: str, at: datetime | None = None) -> None:
    """Stop every open clock of an item (it was cancelled or closed)."""
    for clock in clocks_of(subject_type=subject_type, subject_id=subject_id):
        stop(clock=clock, reason=reason, at=at)


def assign_organization(*, clock: SlaClock, organization_id: int | None) -> SlaClock:
    """Record which organization now answers for the clock (cards go to its admins too)."""
    clock.organization_id = organization_id
    return clock


# Computing


def _iso(value: datetime) -> str:
    return value.isoformat()


def _pauses(clock: SlaClock) -> list[tuple[datetime, datetime | None]]:
    return [
        (datetime.fromisoformat(a), None if b is None else datetime.fromisoformat(b)) for a, b in clock.pauses
    ]


def effective_limit(clock: SlaClock) -> Limit:
    """The clock's limit with its extension added (extensions are granted in the clock's own unit)."""
    amount = clock.amount + (clock.extension_amount or 0)
    return Limit(amount, Unit(clock.unit))


def _reschedule(clock: SlaClock) -> None:
    calendar = load_calendar()
    limit = effective_limit(clock)
    due = calendar.due_with_pauses(clock.started_at, limit.calendar_amount(), limit.unit, _pauses(clock))
    clock.generation += 1
    if due is None:
        clock.due_at = clock.warn_at = None
        clock.assumed_years = []
        return
    clock.due_at = due.at
    clock.assumed_years = sorted(due.assumed_years)
    clock.warn_at = max(clock.started_at, warning_at(calendar, due=due.at, limit=limit))
    args = {"clock_id": clock.id, "generation": clock.generation}
    if clock.escalates and clock.warned_at is None and clock.warn_at < clock.due_at:
        outbox.record(job=WARN_JOB, args=args, queue="high", run_at=clock.warn_at)
    if clock.overdue_at is None:
        outbox.record(job=OVERDUE_JOB, args=args, queue="high", run_at=clock.due_at)


# Cards


def _lock(clock_id: int) -> SlaClock | None:
    # Fresh from the database even if this session already holds the clock (a hook of an earlier card in
    # the sweep's batch loaded it): the row as locked decides whether the card is still owed.
    query = select(SlaClock).where(SlaClock.id == clock_id).execution_options(populate_existing=True)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def _is_current(clock: SlaClock | None, generation: int | None) -> bool:
    # A paused clock counts too: paused in time it has no due time and owes no card, but paused after its
    # deadline (before the red card came) it keeps that due time, and the card is still owed.
    return (
        clock is not None
        and clock.state != "stopped"
        and (generation is None or generation == clock.generation)
    )


def _street_id(community_id: int) -> int:
    return db.session.scalar(select(Community.street_id).where(Community.id == community_id))


def answerable(*, community_id: int, organization_id: int | None, escalate: bool) -> list[int]:
    """Who hears of a card: the organization holding the item, else the secretary; an escalation (overdue,
    any 督办) adds the secretary and the street admin."""
    people: list[int] = []
    if organization_id is not None:
        people += members_with_role(
            role=Role.ORG_ADMIN, scope_type=ScopeType.ORGANIZATION, scope_id=organization_id
        )
    if organization_id is None or escalate:
        people += members_with_role(
            role=Role.SECRETARY, scope_type=ScopeType.COMMUNITY, scope_id=community_id
        )
    if escalate:
        people += members_with_role(
            role=Role.STREET_ADMIN, scope_type=ScopeType.STREET, scope_id=_street_id(community_id)
        )
    return people


def _answerable(clock: SlaClock, *, escalate: bool) -> list[int]:
    return answerable(
        community_id=clock.community_id, organization_id=clock.organization_id, escalate=escalate
    )


def _come_back(job: str, clock: SlaClock, generation: int | None, at: datetime) -> None:
    """A card job that came early (RQ's scheduler counts whole seconds) is scheduled again for its moment."""
    if generation is not None:
        outbox.record(job=job, args={"clock_id": clock.id, "generation": generation}, queue="high", run_at=at)


def raise_warning(*, clock_id: int, generation: int | None = None, now: datetime | None = None) -> bool:
    """Raise the yellow card if it is due and not yet raised; False when there is nothing to do."""
    now = now or wall.now()
    clock = _lock(clock_id)
    if not _is_current(clock, generation) or not clock.escalates:
        return False
    if clock.warned_at is not None or clock.warn_at is None:
        return False
    if clock.due_at is not None and clock.due_at <= now:
        return False
    if clock.warn_at > now:
        _come_back(WARN_JOB, clock, generation, clock.warn_at)
        return False
    clock.warned_at = now
    kind = subjects.get(clock.subject_type)
    about = kind.describe(clock.subject_id)
    notify_many(
        user_ids=_answerable(clock, escalate=False),
        event="sla_warning",
        fields={
            "subject": about.title,
            "number": about.number,
            "state": "即将超时",
            "at": _iso(clock.due_at),
        },
        page=about.page,
        subject_type=clock.subject_type,
        subject_id=clock.subject_id,
    )
    if kind.on_warning is not None:
        kind.on_warning(clock)
    return True


def raise_overdue(*, clock_id: int, generation: int | None = None, now: datetime | None = None) -> bool:
    """Raise the red card if the clock ran out: a 督办 record and word to those answerable."""
    now = now or wall.now()
    clock = _lock(clock_id)
    if not _is_current(clock, generation) or clock.overdue_at is not None or clock.due_at is None:
        return False
    if clock.due_at > now:
        _come_back(OVERDUE_JOB, clock, generation, clock.due_at)
        return False
    clock.overdue_at = now
    kind = subjects.get(clock.subject_type)
    if not clock.escalates:
        if kind.on_overdue is not None:
            kind.on_overdue(clock)
        return True
    about = kind.describe(clock.subject_id)
    supervision.raise_for_overdue(clock=clock, title=f"{about.title}（{about.number}）")
    notify_many(
        user_ids=_answerable(clock, escalate=True),
        event=kind.overdue_event,
        fields={"subject": about.title, "number": about.number, "state": "已超时", "at": _iso(clock.due_at)},
        page=about.page,
        subject_type=clock.subject_type,
        subject_id=clock.subject_id,
    )
    if kind.on_overdue is not None:
        kind.on_overdue(clock)
    return True


# The sweep


@dataclass
class SweepResult:
    resent: int = 0
    warnings: int = 0
    overdue: int = 0
    seconds: float = 0.0


def _late(column, raised_column, *, cutoff: datetime, extra=(), skip=(), limit: int) -> list[int]:
    conditions = [SlaClock.state == "running", raised_column.is_(None), column <= cutoff, *extra]
    if skip:
        conditions.append(SlaClock.id.not_in(skip))
    return list(db.session.scalars(select(SlaClock.id).where(*conditions).order_by(column).limit(limit)))


def _raise_each(ids: Iterable[int], raise_card, now: datetime, failed: set[int]) -> int:
    """Raise each clock's card in a savepoint of its own: one whose card fails (a hook's bug, a row it
    cannot write) is logged and added to ``failed``, and the others are raised all the same, where one such
    clock at the head of every batch would otherwise hold the whole sweep up, minute after minute."""
    raised = 0
    for clock_id in ids:
        try:
            with db.session.begin_nested():
                raised += bool(raise_card(clock_id=clock_id, now=now))
        except Exception:
            log.exception("SLA sweep: the card of clock %s failed; the sweep goes on without it", clock_id)
            failed.add(clock_id)
    db.session.commit()
    return raised


def _raise_late(column, raised_column, raise_card, now: datetime, cutoff: datetime, batch: int, extra=()):
    """Raise the cards of clocks whose ``column`` passed before ``cutoff`` without one, a batch at a time;
    return how many were raised."""
    raised_in_all, failed = 0, set()
    while ids := _late(column, raised_column, cutoff=cutoff, extra=extra, skip=failed, limit=batch):
        before = len(failed)
        raised = _raise_each(ids, raise_card, now, failed)
        raised_in_all += raised
        if raised + len(failed) - before < len(ids):  # the rest changed under us; the next sweep looks again
            break
    return raised_in_all


def sweep(
    *,
    connection: redis.Redis,
    now: datetime | None = None,
    horizon: timedelta = SWEEP_HORIZON,
    batch: int = 500,
) -> SweepResult:
    """Re-send card jobs Redis lost before they fall due, and raise any card whose job never came."""
    started = time.perf_counter()
    now = now or wall.now()
    result = SweepResult(resent=outbox.rebuild_lost(connection=connection, horizon=horizon, now=now))
    cutoff = now - SWEEP_GRACE
    result.overdue = _raise_late(SlaClock.due_at, SlaClock.overdue_at, raise_overdue, now, cutoff, batch)
    escalating = (SlaClock.due_at > now, SlaClock.escalates.is_(True))
    result.warnings = _raise_late(
        SlaClock.warn_at, SlaClock.warned_at, raise_warning, now, cutoff, batch, extra=escalating
    )
    result.seconds = time.perf_counter() - started
    return result


# Reports


def overdue_counts(
    *,
    group_by: str,
    community_ids: list[int] | None = None,
    subject_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict]:
    """Count open overdue clocks, and clocks that went overdue in [since, until), per community or
    organization; ``community_ids`` narrows to those communities (None: all)."""
    key = SlaClock.community_id if group_by == "community" else SlaClock.organization_id
    still_open = func.sum(
        db.case((db.and_(SlaClock.state != "stopped", SlaClock.overdue_at.is_not(None)), 1), else_=0)
    )
    in_period = db.and_(
        SlaClock.overdue_at.is_not(None),
        *([SlaClock.overdue_at >= since] if since else []),
        *([SlaClock.overdue_at < until] if until else []),
    )
    query = (
        select(key, still_open, func.sum(db.case((in_period, 1), else_=0)))
        .where(SlaClock.overdue_at.is_not(None), SlaClock.escalates.is_(True), key.is_not(None))
        .group_by(key)
    )
    if community_ids is not None:
        query = query.where(SlaClock.community_id.in_(community_ids))
    if subject_type:
        query = query.where(SlaClock.subject_type == subject_type)
    rows = db.session.execute(query).all()
    model = Community if group_by == "community" else Organization
    names = {
        row.id: row
        for row in db.session.execute(
            select(model.id, model.public_id, model.name).where(model.id.in_([r[0] for r in rows]))
        )
    }
    result = [
        {
            "id": names[key_id].public_id,
            "name": names[key_id].name,
            "open_overdue": int(open_count or 0),
            "overdue_in_period": int(period_count or 0),
        }
        for key_id, open_count, period_count in rows
    ]
    result.sort(key=lambda r: (-r["open_overdue"], -r["overdue_in_period"], r["name"]))
    return result
