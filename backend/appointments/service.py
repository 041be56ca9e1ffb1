"""Appointments (网上预约): service points open weekly slots; residents (or their community's secretary, 代约)
book, move and cancel places in them; a reminder goes out the evening before.

Capacity is the database's to keep. A weekly slot on a date becomes a ``SlotOccurrence`` row the first time
someone books it (``INSERT ... ON CONFLICT DO NOTHING``, so two first bookings make one row); a booking takes
a seat with one conditional statement, ``UPDATE slot_occurrences SET booked = booked + 1 WHERE id = :id AND
booked < capacity``, and a refused update (no row changed) is a full slot. On PostgreSQL concurrent updates
of the row queue on its lock and each re-checks the condition against the committed count; on SQLite writers
are serialized outright (a writer that read a stale snapshot is re-run whole by create_app's retry). Seats
are given back with ``booked - 1`` in the same transaction as the cancellation or move. A transaction that
touches two occurrences (a move) updates them in id order, so two opposite moves cannot deadlock.

Days: official holidays (the working calendar, backend.sla) offer no slots; any other day offers the slots
of its own weekday. Make-up workdays (调休上班, a working Saturday or Sunday) follow the same rule: they
offer the point's slots for that weekday, if it has any, and do not borrow a Monday's.

For the errands domain: ``get_booking(public_id)``, ``link_errand`` (an errand made from a booking: the
booking stays booked until the visit), ``mark_attended`` (the errand was accepted: the resident came),
``cancel_for_errand`` (the errand was called off before the visit) and ``on_moved`` (the visit moved: the
errand's time to be received follows it).
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import String, cast, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend import clock
from backend.appointments.models import (
    BOOKING_STATE_LABELS,
    Booking,
    OpeningSlot,
    ServicePoint,
    SlotOccurrence,
)
from backend.auth.models import User
from backend.auth.roles import Role, ScopeType
from backend.auth.service import residence_required
from backend.community.models import Community, Grid, Street
from backend.community.service import get_community
from backend.db import db
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.notify.service import notify
from backend.outbox import service as outbox
from backend.pagination import paginate
from backend.sla.calendar import WorkCalendar
from backend.sla.service import load_calendar

SUBJECT = "appointment"
# The state words of the resident's notices when the community cancels or moves their booking
# (backend.notify.events: the appointment's template carries them).
CANCELLED, MOVED = "已取消", "已改约"
REMIND_JOB = "appointments.remind"
# The reminder goes out at this local time on the day before the visit (or at once when that has passed).
REMIND_AT = time(18, 0)
MAX_RANGE_DAYS = 31
# Called with a booking an errand was made from once its visit has moved (in the move's transaction): the
# errands domain times the errand from the visit.
_on_moved: list[Callable[[Booking], None]] = []


def on_moved(hook: Callable[[Booking], None]) -> None:
    """Have ``hook(booking)`` run, in the move's transaction, whenever a booking linked to an errand moves."""
    _on_moved.append(hook)


# Who the caller is


def _scope_ids(user: User, role: str, scope_type: str) -> set[int]:
    return {m.scope_id for m in user.memberships if m.role == role and m.scope_type == scope_type}


def _secretary_of(user: User) -> set[int]:
    return _scope_ids(user, Role.SECRETARY, ScopeType.COMMUNITY)


def _street_admin_of(user: User) -> set[int]:
    return _scope_ids(user, Role.STREET_ADMIN, ScopeType.STREET)


def resident_community(user: User) -> Community | None:
    """The community a user lives in as a registered resident (through a grid, or directly), if any."""
    for m in user.memberships:
        if m.role != Role.RESIDENT:
            continue
        if m.scope_type == ScopeType.GRID:
            grid = db.session.get(Grid, m.scope_id)
            if grid is not None:
                return db.session.get(Community, grid.community_id)
        if m.scope_type == ScopeType.COMMUNITY:
            return db.session.get(Community, m.scope_id)
    return None


def can_manage_point(user: User, point: ServicePoint) -> bool:
    """Street admins manage their street's points; a secretary manages their own community's."""
    if point.street_id in _street_admin_of(user):
        return True
    return point.community_id is not None and point.community_id in _secretary_of(user)


def _require_manage(user: User, point: ServicePoint) -> None:
    if not can_manage_point(user, point):
        raise Forbidden("只能管理本社区（或本街道）的服务点", code="not_point_manager")


def _serves(point: ServicePoint, community: Community) -> bool:
    """A community's point serves its residents; a street-level point serves the whole street."""
    if point.community_id is not None:
        return point.community_id == community.id
    return point.street_id == community.street_id


# Service points and their weekly slots


def get_point(public_id: str) -> ServicePoint:
    point = db.session.scalar(select(ServicePoint).where(ServicePoint.public_id == public_id))
    if point is None:
        raise NotFound("服务点不存在")
    return point


def get_slot(public_id: str, *, point: ServicePoint | None = None, field: str | None = None) -> OpeningSlot:
    """Return a weekly slot (of ``point``, when given); 404, or 422 on ``field`` when the body named it."""
    slot = db.session.scalar(select(OpeningSlot).where(OpeningSlot.public_id == public_id))
    if slot is None or (point is not None and slot.point_id != point.id):
        if field:
            raise ValidationFailed("时段不存在", details={field: ["时段不存在"]})
        raise NotFound("时段不存在")
    return slot


def _street_for_new_point(actor: User, street_public_id: str | None) -> int:
    admin_of = _street_admin_of(actor)
    if street_public_id:
        street = db.session.scalar(select(Street).where(Street.public_id == street_public_id))
        if street is None:
            raise ValidationFailed("街道不存在", details={"street_id": ["街道不存在"]})
        if street.id not in admin_of:
            raise Forbidden("只能在本街道设立服务点", code="not_point_manager")
        return street.id
    if not admin_of:
        raise Forbidden("街道服务点由街道管理员设立；社区服务点请填写社区", code="not_point_manager")
    if len(admin_of) > 1:
        raise ValidationFailed("请指定街道", details={"street_id": ["管理多个街道时须指定"]})
    return next(iter(admin_of))


def _known_errand_types(codes: list[str]) -> list[str]:
    """The codes, once each, all of them errand types the street offers; 422 naming the unknown ones."""
    from backend.errands.models import ErrandType

    codes = list(dict.fromkeys(codes))
    known = set(db.session.scalars(select(ErrandType.code).where(ErrandType.code.in_(codes))))
    if unknown := [c for c in codes if c not in known]:
        raise ValidationFailed(details={"errand_types": [f"未知的代办事项：{', '.join(unknown)}"]})
    return codes


def create_point(
    *,
    actor: User,
    name: str,
    address: str,
    errand_types: list[str],
    community_public_id: str | None = None,
    street_public_id: str | None = None,
    description: str = "",
    booking_days_ahead: int = 14,
) -> ServicePoint:
    """Open a service point in a community (or, without one, at the street), managed by the actor."""
    if community_public_id:
        try:
            community = get_community(community_public_id)
        except NotFound:
            raise ValidationFailed("社区不存在", details={"community_id": ["社区不存在"]}) from None
        street_id, community_id = community.street_id, community.id
    else:
        street_id, community_id = _street_for_new_point(actor, street_public_id), None
    point = ServicePoint(
        street_id=street_id,
        community_id=community_id,
        name=name,
        address=address,
        description=description,
        errand_types=_known_errand_types(errand_types),
        booking_days_ahead=booking_days_ahead,
        active=True,
    )
    _require_manage(actor, point)
    db.session.add(point)
    db.session.flush()
    return point


def update_point(*, actor: User, point: ServicePoint, changes: dict) -> ServicePoint:
    """Change a point's name, address, description, errand types, booking window or whether it is open."""
    _require_manage(actor, point)
    for key in ("name", "address", "description", "booking_days_ahead", "active"):
        if key in changes:
            setattr(point, key, changes[key])
    if "errand_types" in changes:
        point.errand_types = _known_errand_types(changes["errand_types"])
    return point


def _hold(point: ServicePoint) -> None:
    """Hold the point until commit, then read its slots afresh: two slots opened at once are each checked
    against the other. A write (PostgreSQL locks the row; on SQLite a transaction's first write holds the
    database, where a read would hold nothing), and the point did change."""
    db.session.execute(
        update(ServicePoint)
        .where(ServicePoint.id == point.id)
        .values(updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(point, ["slots"])


def _overlapping(point: ServicePoint, weekday: int, start: time, end: time) -> OpeningSlot | None:
    for slot in point.slots:
        if slot.active and slot.weekday == weekday and slot.start_time < end and start < slot.end_time:
            return slot
    return None


def add_slot(
    *, actor: User, point: ServicePoint, weekday: int, start: time, end: time, capacity: int
) -> OpeningSlot:
    """Open a weekly slot at the point; it may not overlap another open slot of the same weekday."""
    _require_manage(actor, point)
    if end <= start:
        raise ValidationFailed("结束时间须晚于开始时间", details={"end": ["须晚于开始时间"]})
    _hold(point)
    other = _overlapping(point, weekday, start, end)
    if other is not None:
        span = f"{other.start_time:%H:%M}–{other.end_time:%H:%M}"
        raise ValidationFailed("与已有时段重叠", details={"start": [f"与{other.weekday_label} {span} 重叠"]})
    slot = OpeningSlot(
        point_id=point.id, weekday=weekday, start_time=start, end_time=end, capacity=capacity, active=True
    )
    db.session.add(slot)
    db.session.flush()
    db.session.refresh(point, ["slots"])
    return slot


def update_slot(
    *, actor: User, slot: OpeningSlot, capacity: int | None = None, active: bool | None = None
) -> OpeningSlot:
    """Change a slot's places (dates not yet begun follow) or close/reopen it; bookings made stand."""
    point = slot.point
    _require_manage(actor, point)
    if active is True and not slot.active:
        _hold(point)
        other = _overlapping(point, slot.weekday, slot.start_time, slot.end_time)
        if other is not None:
            raise ValidationFailed("与已有时段重叠", details={"active": ["同一时间已有开放的时段"]})
    if active is not None:
        slot.active = active
    if capacity is not None and capacity != slot.capacity:
        slot.capacity = capacity
        db.session.execute(
            update(SlotOccurrence)
            .where(SlotOccurrence.slot_id == slot.id, SlotOccurrence.starts_at > clock.now())
            .values(capacity=capacity)
            .execution_options(synchronize_session=False)
        )
    return slot


def points_page(
    *, community_public_id: str | None, errand_type: str | None, limit: int, cursor: str | None
) -> dict:
    """Open service points, a keyset page at a time: those serving a community, or handling an errand."""
    query = select(ServicePoint).where(ServicePoint.active.is_(True))
    if community_public_id:
        community = get_community(community_public_id)
        query = query.where(
            or_(
                ServicePoint.community_id == community.id,
                (ServicePoint.community_id.is_(None)) & (ServicePoint.street_id == community.street_id),
            )
        )
    if errand_type:
        # Codes are validated as [a-z0-9_]; the quotes make the match whole within the JSON list.
        query = query.where(cast(ServicePoint.errand_types, String).like(f'%"{errand_type}"%'))
    return paginate(query, ServicePoint.id, limit=limit, cursor=cursor)


# Days and occurrences


def local_today() -> date:
    return clock.to_local(clock.now()).date()


def is_open_day(calendar: WorkCalendar, day: date) -> bool:
    """Official holidays close; every other day opens by its own weekday (make-up workdays included)."""
    if calendar.is_working_day(day):
        return True
    return day.weekday() >= 5 and day not in calendar.holidays


def occurrence_bounds(slot: OpeningSlot, day: date) -> tuple[datetime, datetime]:
    """The slot's start and end on a date, as UTC instants."""
    return (
        datetime.combine(day, slot.start_time, tzinfo=clock.LOCAL_TZ).astimezone(UTC),
        datetime.combine(day, slot.end_time, tzinfo=clock.LOCAL_TZ).astimezone(UTC),
    )


def booking_window(point: ServicePoint) -> tuple[date, date]:
    """The first and last dates residents may book at the point now."""
    today = local_today()
    return today, today + timedelta(days=point.booking_days_ahead - 1)


def availability(*, point: ServicePoint, start: date | None, end: date | None) -> dict:
    """The point's bookable occurrences between two dates (within its booking window), places left each."""
    if start and end and end < start:
        raise ValidationFailed("结束日期早于开始日期", details={"to": ["不能早于开始日期"]})
    if start and end and (end - start).days >= MAX_RANGE_DAYS:
        raise ValidationFailed("查询范围过长", details={"to": [f"一次最多查询 {MAX_RANGE_DAYS} 天"]})
    first, last = booking_window(point)
    start, end = max(start or first, first), min(end or last, last)
    items: list[dict] = []
    closed: list[dict] = []
    slots = [s for s in point.slots if s.active] if point.active else []
    if not slots or end < start:
        return {"items": items, "closed_days": closed}
    calendar = load_calendar()
    counts = {
        (o.slot_id, o.day): o
        for o in db.session.scalars(
            select(SlotOccurrence).where(
                SlotOccurrence.slot_id.in_([s.id for s in slots]), SlotOccurrence.day.between(start, end)
            )
        )
    }
    now = clock.now()
    day = start
    while day <= end:
        todays = [s for s in slots if s.weekday == day.isoweekday()]
        if todays and not is_open_day(calendar, day):
            closed.append({"date": day, "reason": "法定节假日"})
        elif todays:
            for slot in todays:
                starts_at, ends_at = occurrence_bounds(slot, day)
                if starts_at <= now:
                    continue
                occurrence = counts.get((slot.id, day))
                capacity = occurrence.capacity if occurrence else slot.capacity
                booked = occurrence.booked if occurrence else 0
                items.append(
                    {
                        "slot": slot,
                        "date": day,
                        "starts_at": starts_at,
                        "ends_at": ends_at,
                        "capacity": capacity,
                        "booked": booked,
                        "remaining": max(capacity - booked, 0),
                    }
                )
        day += timedelta(days=1)
    return {"items": items, "closed_days": closed}


def _check_bookable(slot: OpeningSlot, day: date) -> tuple[datetime, datetime]:
    """Refuse (422, by field) a slot and date nobody may book now; return the occurrence's bounds."""
    point = slot.point
    if not (slot.active and point.active):
        raise ValidationFailed(
            "该时段已停止预约", code="slot_closed", details={"slot_id": ["该时段已停止预约"]}
        )
    if slot.weekday != day.isoweekday():
        raise ValidationFailed(
            "该时段不在这一天开放", details={"date": [f"该时段只在{slot.weekday_label}开放"]}
        )
    first, last = booking_window(point)
    if not first <= day <= last:
        raise ValidationFailed(
            "不在可预约的日期范围内",
            code="outside_booking_window",
            details={"date": [f"只能预约 {first.isoformat()} 至 {last.isoformat()} 的时段"]},
        )
    if not is_open_day(load_calendar(), day):
        raise ValidationFailed(
            "法定节假日不开放预约", code="closed_day", details={"date": ["法定节假日不开放"]}
        )
    starts_at, ends_at = occurrence_bounds(slot, day)
    if starts_at <= clock.now():
        raise ValidationFailed(
            "该时段已开始，不能预约", code="slot_started", details={"date": ["该时段已开始"]}
        )
    return starts_at, ends_at


def _insert_ignoring_duplicate(values: dict):
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    return insert(SlotOccurrence).values(**values).on_conflict_do_nothing(index_elements=["slot_id", "day"])


def _occurrence_id(slot: OpeningSlot, day: date, starts_at: datetime, ends_at: datetime) -> int:
    """Return the occurrence row of a slot on a date, writing it if this is its first booking."""
    query = select(SlotOccurrence.id).where(SlotOccurrence.slot_id == slot.id, SlotOccurrence.day == day)
    found = db.session.scalar(query)
    if found is not None:
        return found
    db.session.execute(
        _insert_ignoring_duplicate(
            {
                "slot_id": slot.id,
                "day": day,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "capacity": slot.capacity,
                "booked": 0,
            }
        )
    )
    return db.session.scalar(query)


def _take_seat(occurrence_id: int) -> None:
    """Take one place, or 409 slot_full: one conditional UPDATE, the database's check, not ours."""
    taken = db.session.execute(
        update(SlotOccurrence)
        .where(SlotOccurrence.id == occurrence_id, SlotOccurrence.booked < SlotOccurrence.capacity)
        .values(booked=SlotOccurrence.booked + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise Conflict("该时段已约满，请选择其他时段", code="slot_full", details={"remaining": 0})


def _give_back_seat(occurrence_id: int) -> None:
    db.session.execute(
        update(SlotOccurrence)
        .where(SlotOccurrence.id == occurrence_id, SlotOccurrence.booked > 0)
        .values(booked=SlotOccurrence.booked - 1)
        .execution_options(synchronize_session=False)
    )


# Bookings


def _resident_for(actor: User, resident_public_id: str | None) -> tuple[User, Community, str]:
    """Whom the booking is for, their community, and the capacity the actor books in (resident/secretary)."""
    if resident_public_id is None or resident_public_id == actor.public_id:
        community = resident_community(actor)
        if community is None:
            raise Forbidden("只有登记的居民可以预约；书记代约请填写居民", code="not_a_resident")
        return actor, community, Role.RESIDENT.value
    resident = db.session.scalar(select(User).where(User.public_id == resident_public_id))
    community = resident_community(resident) if resident is not None and resident.is_active else None
    if community is None or community.id not in _secretary_of(actor):
        raise ValidationFailed("居民不存在", details={"resident_id": ["不是本社区登记的居民"]})
    return resident, community, Role.SECRETARY.value


def _check_target(point: ServicePoint, community: Community, errand_type: str) -> None:
    if not _serves(point, community):
        raise Forbidden("该服务点不受理本社区居民的预约", code="outside_service_area")
    if errand_type not in point.errand_types:
        raise ValidationFailed("该服务点不办理此事项", details={"errand_type": ["该服务点不办理此事项"]})


def _has_active_booking(occurrence_id: int, resident_id: int) -> bool:
    return (
        db.session.scalar(
            select(Booking.id).where(
                Booking.occurrence_id == occurrence_id,
                Booking.resident_id == resident_id,
                Booking.state == "booked",
            )
        )
        is not None
    )


def no_residence() -> Forbidden:
    """The route's answer to booking by anyone holding no role that books (most likely someone new)."""
    return residence_required("预约")


def already_booked() -> Conflict:
    return Conflict("您已预约了这个时段", code="already_booked")


def active_booking_id(
    *, resident_public_id: str | None, actor: User, slot_public_id: str, day: date
) -> int | None:
    """The resident's active booking of a slot on a date, if any (to explain a lost duplicate race)."""
    resident_id = actor.id
    if resident_public_id:
        resident_id = db.session.scalar(select(User.id).where(User.public_id == resident_public_id))
    return db.session.scalar(
        select(Booking.id)
        .join(SlotOccurrence, SlotOccurrence.id == Booking.occurrence_id)
        .join(OpeningSlot, OpeningSlot.id == SlotOccurrence.slot_id)
        .where(
            OpeningSlot.public_id == slot_public_id,
            SlotOccurrence.day == day,
            Booking.resident_id == resident_id,
            Booking.state == "booked",
        )
    )


def book(
    *,
    actor: User,
    slot_public_id: str,
    day: date,
    errand_type: str,
    note: str = "",
    resident_public_id: str | None = None,
) -> Booking:
    """Book a place for a resident (the actor, or a resident of the secretary's community: 代约)."""
    slot = get_slot(slot_public_id, field="slot_id")
    point = slot.point
    resident, community, role = _resident_for(actor, resident_public_id)
    _check_target(point, community, errand_type)
    starts_at, ends_at = _check_bookable(slot, day)
    occurrence_id = _occurrence_id(slot, day, starts_at, ends_at)
    if _has_active_booking(occurrence_id, resident.id):
        raise already_booked()
    booking = Booking(
        resident_id=resident.id,
        community_id=community.id,
        street_id=point.street_id,
        point_id=point.id,
        slot_id=slot.id,
        occurrence_id=occurrence_id,
        starts_at=starts_at,
        ends_at=ends_at,
        errand_type=errand_type,
        note=note,
        state="booked",
        booked_by_id=actor.id,
        booked_by_role=role,
        schedule_version=1,
    )
    db.session.add(booking)
    db.session.flush()
    _schedule_reminder(booking)
    # Last, so the occurrence's row lock is held only for what remains: the commit.
    _take_seat(occurrence_id)
    return booking


def _actor_standing(booking: Booking, user: User) -> set[str]:
    standing: set[str] = set()
    if booking.resident_id == user.id:
        standing.add(Role.RESIDENT.value)
    if booking.community_id in _secretary_of(user) or (
        booking.point.community_id is not None and booking.point.community_id in _secretary_of(user)
    ):
        standing.add(Role.SECRETARY.value)
    if booking.street_id in _street_admin_of(user):
        standing.add(Role.STREET_ADMIN.value)
    return standing


def can_view(booking: Booking, user: User) -> bool:
    """Residents their own; secretaries their community's (or their points'); street admins their street's."""
    return bool(_actor_standing(booking, user))


def allowed_actions(booking: Booking, user: User) -> list[str]:
    """What the user may still do to the booking: move and cancel until the visit starts. A booking an
    errand was made from is cancelled with its errand (cancelling the errand gives the place back), not on
    its own: the errand would wait for a visit nobody is coming to."""
    if booking.state != "booked" or booking.starts_at <= clock.now():
        return []
    standing = _actor_standing(booking, user)
    actions = []
    if standing & {Role.RESIDENT.value, Role.SECRETARY.value}:
        actions.append("move")
    if standing and booking.errand_id is None:
        actions.append("cancel")
    return actions


def get_visible_booking(public_id: str, *, viewer: User) -> Booking:
    """Return a booking the viewer may see; 404 otherwise."""
    booking = db.session.scalar(select(Booking).where(Booking.public_id == public_id))
    if booking is None or not can_view(booking, viewer):
        raise NotFound("预约不存在")
    return booking


def _refuse(booking: Booking, action: str, message: str, code: str = "illegal_action") -> Conflict:
    return Conflict(
        message,
        code=code,
        details={
            "state": booking.state,
            "state_label": BOOKING_STATE_LABELS[booking.state],
            "action": action,
        },
    )


def _check_open(booking: Booking, user: User, action: str, label: str) -> None:
    if action not in allowed_actions(booking, user):
        if booking.state != "booked":
            raise _refuse(booking, action, f"预约当前为“{booking.state_label}”，不能{label}")
        if booking.starts_at <= clock.now():
            raise _refuse(booking, action, f"预约时段已开始，不能{label}", code="too_late")
        if action == "cancel" and booking.errand_id is not None and _actor_standing(booking, user):
            message = "该预约已转为代办，请取消代办事项（预约随之取消）"
            raise _refuse(booking, action, message, code="appointment_used")
        raise Forbidden(f"无权{label}该预约")


def _lost_race(booking: Booking) -> Conflict:
    db.session.refresh(booking)
    return _refuse(booking, "", "预约刚被他人修改，请刷新后再试", code="concurrent_change")


def move(*, actor: User, booking: Booking, slot_public_id: str, day: date) -> Booking:
    """Move a booking to another slot or date (any point serving the resident that handles the errand)."""
    _check_open(booking, actor, "move", "改约")
    slot = get_slot(slot_public_id, field="slot_id")
    community = db.session.get(Community, booking.community_id)
    _check_target(slot.point, community, booking.errand_type)
    starts_at, ends_at = _check_bookable(slot, day)
    new_id = _occurrence_id(slot, day, starts_at, ends_at)
    old_id, version = booking.occurrence_id, booking.schedule_version
    if new_id == old_id:
        raise ValidationFailed("与原预约时段相同", details={"date": ["与原预约时段相同"]})
    if _has_active_booking(new_id, booking.resident_id):
        raise already_booked()
    moved = db.session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.state == "booked", Booking.schedule_version == version)
        .values(
            point_id=slot.point_id,
            street_id=slot.point.street_id,
            slot_id=slot.id,
            occurrence_id=new_id,
            starts_at=starts_at,
            ends_at=ends_at,
            schedule_version=version + 1,
            moved_count=Booking.moved_count + 1,
            updated_at=clock.now(),
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise _lost_race(booking)
    # Both counters in id order: two opposite moves lock them in the same order and cannot deadlock.
    for occurrence_id in sorted((old_id, new_id)):
        if occurrence_id == new_id:
            _take_seat(new_id)
        else:
            _give_back_seat(old_id)
    db.session.refresh(booking)
    _schedule_reminder(booking)
    if booking.errand_id is not None:
        for hook in _on_moved:
            hook(booking)
    _tell_resident(booking, actor, state=MOVED, note=booking.point.address)
    return booking


def cancel(*, actor: User, booking: Booking, reason: str = "") -> Booking:
    """Cancel a booking before its visit starts, giving its place back."""
    _check_open(booking, actor, "cancel", "取消")
    if not _cancelled(booking, actor_id=actor.id, reason=reason):
        raise _lost_race(booking)
    _tell_resident(booking, actor, state=CANCELLED, note=reason)
    return booking


def _tell_resident(booking: Booking, actor: User, *, state: str, note: str) -> None:
    """Tell the resident what the community (a secretary, a street admin) did to their booking: they would
    otherwise learn of a cancelled visit at the counter, or go at the old time. Nothing when they did it
    themselves. In the caller's transaction."""
    if actor.id != booking.resident_id:
        _notify_resident(booking, state=state, note=note)


def _notify_resident(booking: Booking, *, state: str | None, note: str | None) -> None:
    """A notice to the resident about their booking, through the appointment's template (reminder, cancel,
    move: its ``state`` word picks the inbox's title and sentence)."""
    notify(
        user_id=booking.resident_id,
        event="appointment_reminder",
        fields={
            "subject": f"{booking.errand_type_label}预约",
            "state": state,
            "at": clock.to_local(booking.starts_at).isoformat(),
            "place": booking.point.name,
            "note": note or None,
        },
        page=f"pages/appointments/detail?id={booking.public_id}",
        subject_type=SUBJECT,
        subject_id=booking.id,
    )


def _cancelled(booking: Booking, *, actor_id: int, reason: str) -> bool:
    """Cancel the booking as read (still booked, not moved since) and give its place back; False when another
    change came first."""
    now = clock.now()
    cancelled = db.session.execute(
        update(Booking)
        .where(
            Booking.id == booking.id,
            Booking.state == "booked",
            Booking.schedule_version == booking.schedule_version,
        )
        .values(
            state="cancelled",
            cancelled_at=now,
            cancelled_by_id=actor_id,
            cancel_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if cancelled.rowcount != 1:
        return False
    _give_back_seat(booking.occurrence_id)
    db.session.refresh(booking)
    return True


def bookings_page(
    *,
    viewer: User,
    state: str | None,
    point_public_id: str | None,
    day: date | None,
    limit: int,
    cursor: str | None,
) -> dict:
    """The bookings the viewer may see, newest first: own (resident), community's (secretary), street's."""
    secretary_of, admin_of = _secretary_of(viewer), _street_admin_of(viewer)
    seen = [Booking.resident_id == viewer.id]
    if secretary_of:
        seen.append(Booking.community_id.in_(secretary_of))
        seen.append(
            Booking.point_id.in_(select(ServicePoint.id).where(ServicePoint.community_id.in_(secretary_of)))
        )
    if admin_of:
        seen.append(Booking.street_id.in_(admin_of))
    query = select(Booking).where(or_(*seen))
    if state:
        query = query.where(Booking.state == state)
    if point_public_id:
        query = query.where(Booking.point_id == get_point(point_public_id).id)
    if day:
        start = datetime.combine(day, time(0), tzinfo=clock.LOCAL_TZ)
        query = query.where(Booking.starts_at >= start, Booking.starts_at < start + timedelta(days=1))
    return paginate(query, Booking.id, limit=limit, cursor=cursor, descending=True)


# Reminder


def reminder_time(booking: Booking) -> datetime | None:
    """18:00 local on the day before the visit; None (at once) when that moment has passed."""
    day_before = clock.to_local(booking.starts_at).date() - timedelta(days=1)
    at = datetime.combine(day_before, REMIND_AT, tzinfo=clock.LOCAL_TZ).astimezone(UTC)
    return at if at > clock.now() else None


def _schedule_reminder(booking: Booking) -> None:
    outbox.record(
        job=REMIND_JOB,
        args={"booking_id": booking.id, "schedule_version": booking.schedule_version},
        run_at=reminder_time(booking),
    )


def send_reminder(*, booking_id: int, schedule_version: int) -> bool:
    """Remind the resident of a visit; nothing if it was cancelled, moved since, already reminded or begun."""
    query = select(Booking).where(Booking.id == booking_id)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(of=Booking)
    booking = db.session.scalar(query)
    if (
        booking is None
        or booking.state != "booked"
        or booking.schedule_version != schedule_version
        or booking.reminded_version == schedule_version
        or booking.starts_at <= clock.now()
    ):
        return False
    _notify_resident(booking, state=None, note=booking.point.address)
    booking.reminded_version = schedule_version
    return True


# For the errands domain


def get_booking(public_id: str) -> Booking:
    """Return a booking by its public id, whoever asks (the caller checks access); 404 when there is none."""
    booking = db.session.scalar(select(Booking).where(Booking.public_id == public_id))
    if booking is None:
        raise NotFound("预约不存在")
    return booking


def link_errand(booking: Booking, *, errand_id: int) -> Booking:
    """Record the errand made from a booking (the mini-program books a slot, then the errand at once); in the
    caller's transaction. The booking stays booked: the resident has not come yet, so the reminder still
    goes the evening before and the visit can still be moved. 409 appointment_used when another errand was
    made from it first; 409 for a booking no longer booked."""
    # Conditional: of two errands made from one booking at once, one links it.
    db.session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.state == "booked", Booking.errand_id.is_(None))
        .values(errand_id=errand_id, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(booking)
    if booking.errand_id is not None and booking.errand_id != errand_id:
        raise _refuse(booking, "link", "该预约已转为代办", code="appointment_used")
    if booking.errand_id is None:
        raise _refuse(booking, "link", f"预约当前为“{booking.state_label}”，不能转为代办")
    return booking


def mark_attended(booking: Booking) -> Booking:
    """Record that the resident came: the errand made from the booking was accepted at the counter (受理,
    the errand's first step there; there is no check-in of its own). In the caller's transaction.
    Idempotent for an attended booking; 409 for a cancelled one. The place stays taken."""
    if booking.state == "booked":
        now = clock.now()
        db.session.execute(
            update(Booking)
            .where(Booking.id == booking.id, Booking.state == "booked")
            .values(state="attended", attended_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(booking)
    if booking.state != "attended":
        raise _refuse(booking, "attend", f"预约当前为“{booking.state_label}”，不能登记到场")
    return booking


def cancel_for_errand(booking: Booking, *, actor_id: int, reason: str) -> bool:
    """Cancel a booking because the errand made from it was called off before the resident came (cancelled,
    or failed, while still appointed): its place goes back and no reminder follows. Nothing for a booking
    no longer booked or whose visit has begun. In the caller's transaction; the errand's own notice tells
    the resident. Whether it was cancelled."""
    while booking.state == "booked" and booking.starts_at > clock.now():
        if _cancelled(booking, actor_id=actor_id, reason=reason):
            return True
        db.session.refresh(booking)  # moved meanwhile: cancelled where it is now
    return False
