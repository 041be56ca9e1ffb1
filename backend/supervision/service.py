"""督办: open a supervision record on an item that went wrong; list them; close them with the outcome."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from backend import clock
from backend.db import db
from backend.errors import Conflict, NotFound
from backend.pagination import paginate
from backend.sla import subjects
from backend.supervision.models import Supervision


def raise_for_overdue(*, clock, title: str) -> Supervision:
    """Open the overdue record of an SLA clock (once per clock, whoever asks twice)."""
    existing = db.session.scalar(
        select(Supervision).where(Supervision.clock_id == clock.id, Supervision.reason == "overdue")
    )
    if existing is not None:
        return existing
    return open_record(
        subject_type=clock.subject_type,
        subject_id=clock.subject_id,
        community_id=clock.community_id,
        organization_id=clock.organization_id,
        reason="overdue",
        title=title,
        clock_id=clock.id,
    )


def open_record(
    *,
    subject_type: str,
    subject_id: int,
    community_id: int,
    reason: str,
    title: str,
    organization_id: int | None = None,
    clock_id: int | None = None,
    note: str = "",
    raised_by_id: int | None = None,
) -> Supervision:
    """Open a supervision record in the caller's transaction; refused (Conflict) while the item has one open
    for the same reason (the same clock's, for a clock's)."""
    if clock_id is None and any(
        r.reason == reason for r in open_for(subject_type=subject_type, subject_id=subject_id)
    ):
        # A clock's record is kept single by a unique index; one without a clock (a third return, a third
        # reopen) by this check, under the lock the item's own change holds.
        raise Conflict("该事项已在督办中", code="supervision_exists")
    record = Supervision(
        subject_type=subject_type,
        subject_id=subject_id,
        community_id=community_id,
        organization_id=organization_id,
        clock_id=clock_id,
        reason=reason,
        title=title[:200],
        note=note,
        raised_by_id=raised_by_id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        raise Conflict("该事项已在督办中", code="supervision_exists") from None
    return record


def open_for(*, subject_type: str, subject_id: int) -> list[Supervision]:
    """Return an item's open supervision records (the flag shown beside it)."""
    return list(
        db.session.scalars(
            select(Supervision)
            .where(
                Supervision.subject_type == subject_type,
                Supervision.subject_id == subject_id,
                Supervision.status == "open",
            )
            .order_by(Supervision.id)
        )
    )


def get(public_id: str) -> Supervision:
    record = db.session.scalar(select(Supervision).where(Supervision.public_id == public_id))
    if record is None:
        raise NotFound("督办记录不存在")
    return record


def records_page(
    *,
    community_ids: list[int] | None,
    status: str | None,
    reason: str | None,
    limit: int,
    cursor: str | None,
) -> dict:
    """List supervision records newest first, within the given communities (None: the whole street)."""
    query = select(Supervision)
    if community_ids is not None:
        query = query.where(Supervision.community_id.in_(community_ids))
    if status:
        query = query.where(Supervision.status == status)
    if reason:
        query = query.where(Supervision.reason == reason)
    page = paginate(query, Supervision.id, limit=limit, cursor=cursor, descending=True)
    # What each is about, read for the whole page (per kind of item), not record by record.
    described = subjects.describe_all((r.subject_type, r.subject_id) for r in page["items"])
    for record in page["items"]:
        record.subject_description = described[record.subject_type, record.subject_id]
    return page


def close(*, record: Supervision, actor_id: int, resolution: str, at: datetime | None = None) -> Supervision:
    """Close a supervision record with what was done about it."""
    if record.status == "closed":
        raise Conflict("督办已结束", details={"status": record.status})
    # Closed only while still open in the database: of two admins closing at once, the second is refused
    # rather than overwriting the first one's resolution.
    closed = db.session.execute(
        update(Supervision)
        .where(Supervision.id == record.id, Supervision.status == "open")
        .values(status="closed", closed_by_id=actor_id, closed_at=at or clock.now(), resolution=resolution)
    )
    if not closed.rowcount:
        db.session.rollback()
        raise Conflict("督办已结束", details={"status": "closed"})
    on_closed = subjects.get(record.subject_type).on_supervision_closed
    if on_closed is not None:
        on_closed(record.subject_id)
    db.session.commit()
    return record
