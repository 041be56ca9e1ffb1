"""Errand metrics, with the definitions in DESIGN.md.

- 代办完成率 (completion rate) = completed ÷ (accepted − cancelled by the resident). "Completed" means the
  result was delivered to the resident (returned_to_resident or completed), a refusal included. Errands are
  counted in the period (and month) they were accepted in, so numerator and denominator are one cohort.
- 按时率 (on-time rate), separately: of the completed, those delivered on time: none of the steps up to the
  delivery ran late (a red card raised, or the step done after its deadline: the deadline decides, not the
  card, whose job may not have run yet). The resident's own step after it (confirming receipt) is theirs,
  not the community's, and does not count.
- Average duration per step: the step clocks that were met (stopped when the step was done), wall-clock
  hours from the step's start to its end, pauses (待补材料) included; with how many of them ran late. Over
  the errands accepted in the period, the same cohort as the rates.
"""

from collections import defaultdict
from datetime import date, datetime, time

from sqlalchemy import or_, select

from backend import clock
from backend.community.models import Community
from backend.db import db
from backend.errands import states
from backend.errands.models import Errand, ErrandType
from backend.sla.models import SlaClock

SUBJECT = "errand"


def _local_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=clock.LOCAL_TZ)


def _rate(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(part / whole, 4)


def _row(key: str, label: str, errands: list, late_ids: set[int]) -> dict:
    accepted = len(errands)
    cancelled = sum(1 for e in errands if e.state == "cancelled" and e.cancelled_by_resident)
    completed = [e for e in errands if e.delivered_at is not None]
    on_time = sum(1 for e in completed if e.id not in late_ids)
    return {
        "key": key,
        "label": label,
        "accepted": accepted,
        "cancelled_by_resident": cancelled,
        "completed": len(completed),
        "refused": sum(1 for e in completed if e.outcome == "refused"),
        "failed": sum(1 for e in errands if e.state == "failed"),
        "completion_rate": _rate(len(completed), accepted - cancelled),
        "on_time": on_time,
        "on_time_rate": _rate(on_time, len(completed)),
    }


def _accepted_between(query, since: date | None, until: date | None):
    """Narrow a query on errands to those accepted in the period (local days, until excluded)."""
    if since:
        query = query.where(Errand.accepted_at >= _local_start(since))
    if until:
        query = query.where(Errand.accepted_at < _local_start(until))
    return query


def _accepted(community_ids: list[int], type_code: str | None, since: date | None, until: date | None):
    query = select(Errand).where(Errand.community_id.in_(community_ids), Errand.accepted_at.is_not(None))
    if type_code:
        query = query.where(
            Errand.type_id == select(ErrandType.id).where(ErrandType.code == type_code).scalar_subquery()
        )
    query = _accepted_between(query, since, until)
    return list(db.session.scalars(query.order_by(Errand.id)))


# The step after the delivery: the resident confirms they have the result and their papers back.
RESIDENTS_STEP = "returned_to_resident"


def _late_ids(errand_ids: list[int]) -> set[int]:
    """The errands with a step up to the delivery that ran late (see the module's note)."""
    if not errand_ids:
        return set()
    return set(
        db.session.scalars(
            select(SlaClock.subject_id).where(
                SlaClock.subject_type == SUBJECT,
                SlaClock.subject_id.in_(errand_ids),
                SlaClock.name != RESIDENTS_STEP,
                or_(SlaClock.overdue_at.is_not(None), SlaClock.on_time.is_(False)),
            )
        )
    )


def completion(
    *,
    community_ids: list[int],
    group_by: str,
    type_code: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> dict:
    """Completion and on-time rates per type, community or month (of acceptance), and in total."""
    errands = _accepted(community_ids, type_code, since, until)
    late = _late_ids([e.id for e in errands])
    groups: dict[str, list] = defaultdict(list)
    labels: dict[str, str] = {}
    communities = {
        c.id: c
        for c in db.session.scalars(
            select(Community).where(Community.id.in_({e.community_id for e in errands}))
        )
    }
    for errand in errands:
        if group_by == "type":
            key, label = errand.type.code, errand.type.name
        elif group_by == "community":
            community = communities[errand.community_id]
            key, label = community.public_id, community.name
        else:
            key = f"{clock.to_local(errand.accepted_at):%Y-%m}"
            label = f"{clock.to_local(errand.accepted_at):%Y年%m月}"
        groups[key].append(errand)
        labels[key] = label
    return {
        "group_by": group_by,
        "items": [_row(key, labels[key], groups[key], late) for key in sorted(groups)],
        "total": _row("total", "合计", errands, late),
    }


def step_durations(
    *,
    community_ids: list[int],
    type_code: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict]:
    """Average time each step took, per type, over the steps that were done, of the errands accepted in
    the period (the cohort the rates count)."""
    query = (
        select(
            ErrandType.code,
            SlaClock.name,
            SlaClock.started_at,
            SlaClock.stopped_at,
            SlaClock.overdue_at,
            SlaClock.on_time,
        )
        .join(Errand, Errand.id == SlaClock.subject_id)
        .join(ErrandType, ErrandType.id == Errand.type_id)
        .where(
            SlaClock.subject_type == SUBJECT,
            SlaClock.state == "stopped",
            SlaClock.stop_reason == "met",
            Errand.community_id.in_(community_ids),
        )
    )
    if type_code:
        query = query.where(ErrandType.code == type_code)
    query = _accepted_between(query, since, until)
    sums: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0.0, 0])
    for code, step, started, stopped, overdue_at, on_time in db.session.execute(query):
        entry = sums[(code, step)]
        entry[0] += 1
        entry[1] += (stopped - started).total_seconds() / 3600
        entry[2] += overdue_at is not None or on_time is False
    order = {s: i for i, s in enumerate(states.STATES)}
    return [
        {
            "type": code,
            "step": step,
            "step_label": states.STATE_LABELS.get(step, step),
            "count": count,
            "average_hours": round(total / count, 2),
            "overdue": overdue,
        }
        for (code, step), (count, total, overdue) in sorted(
            sums.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))
        )
    ]
