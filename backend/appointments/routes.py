"""The appointments API (网上预约): service points and their weekly slots, availability, bookings."""

from collections.abc import Callable

from flask import g
from sqlalchemy.exc import IntegrityError

from backend import idempotency
from backend.appointments import service
from backend.appointments.models import Booking, OpeningSlot, ServicePoint
from backend.appointments.schemas import (
    AvailabilityQuerySchema,
    AvailabilitySchema,
    BookingCancelSchema,
    BookingCreateSchema,
    BookingListQuerySchema,
    BookingMoveSchema,
    BookingPageSchema,
    BookingSchema,
    ServicePointCreateSchema,
    ServicePointListQuerySchema,
    ServicePointPageSchema,
    ServicePointSchema,
    ServicePointUpdateSchema,
    SlotCreateSchema,
    SlotSchema,
    SlotUpdateSchema,
)
from backend.auth import access
from backend.auth.roles import Role
from backend.db import db
from backend.errors import ApiError
from backend.extensions import Blueprint

blp = Blueprint("appointments", __name__, description="网上预约：服务点、每周开放时段、居民预约与书记代约")

MANAGERS = (Role.STREET_ADMIN, Role.SECRETARY)
BOOKERS = (Role.RESIDENT, Role.SECRETARY)
VIEWERS = (Role.RESIDENT, Role.SECRETARY, Role.STREET_ADMIN)


def _commit(change: Callable[[], object]):
    """Run a change and commit it; on a refusal, undo whatever it had written."""
    try:
        result = change()
        db.session.commit()
    except ApiError:
        db.session.rollback()
        raise
    except IntegrityError:
        # A concurrent request gave the resident the same place first (the one-active-booking index).
        db.session.rollback()
        raise service.already_booked() from None
    return result


def _show(booking: Booking) -> Booking:
    booking.actions = service.allowed_actions(booking, g.user)
    return booking


# Service points


@blp.get("/service-points")
@access.public
@blp.arguments(ServicePointListQuerySchema, location="query")
@blp.response(200, ServicePointPageSchema)
def list_points(args):
    """开放的服务点：可按社区（含街道服务点）或代办事项筛选。"""
    return service.points_page(
        community_public_id=args["community_id"],
        errand_type=args["errand_type"],
        limit=args["limit"],
        cursor=args["cursor"],
    )


@blp.post("/service-points")
@access.roles(*MANAGERS)
@blp.arguments(ServicePointCreateSchema)
@blp.response(201, ServicePointSchema)
@blp.doc(**idempotency.DOC)
def create_point(args):
    """设立服务点：书记在本社区设立，街道管理员在本街道（不填社区即为街道服务点）。"""
    return idempotency.create_once(
        "service_points",
        ServicePoint,
        lambda: service.create_point(
            actor=g.user,
            name=args["name"],
            address=args["address"],
            description=args["description"],
            errand_types=args["errand_types"],
            community_public_id=args["community_id"],
            street_public_id=args["street_id"],
            booking_days_ahead=args["booking_days_ahead"],
        ),
    )


@blp.get("/service-points/<string:point_id>")
@access.public
@blp.response(200, ServicePointSchema)
def get_point(point_id):
    """服务点详情与每周开放时段。"""
    return service.get_point(point_id)


@blp.patch("/service-points/<string:point_id>")
@access.roles(*MANAGERS)
@blp.arguments(ServicePointUpdateSchema)
@blp.response(200, ServicePointSchema)
def update_point(args, point_id):
    """修改服务点：名称、地址、办理事项、可提前预约天数、是否开放。"""
    point = service.get_point(point_id)
    return _commit(lambda: service.update_point(actor=g.user, point=point, changes=args))


@blp.post("/service-points/<string:point_id>/slots")
@access.roles(*MANAGERS)
@blp.arguments(SlotCreateSchema)
@blp.response(201, SlotSchema)
@blp.doc(**idempotency.DOC)
def add_slot(args, point_id):
    """新增每周开放时段（星期、起止时间、每个时段可约人数）；同一天的时段不能重叠。"""
    point = service.get_point(point_id)
    return idempotency.create_once(
        f"service_points/{point.public_id}/slots",
        OpeningSlot,
        lambda: service.add_slot(
            actor=g.user,
            point=point,
            weekday=args["weekday"],
            start=args["start"],
            end=args["end"],
            capacity=args["capacity"],
        ),
    )


@blp.patch("/service-points/<string:point_id>/slots/<string:slot_id>")
@access.roles(*MANAGERS)
@blp.arguments(SlotUpdateSchema)
@blp.response(200, SlotSchema)
def update_slot(args, point_id, slot_id):
    """修改时段的可约人数（未开始的日期随之调整），或停止/恢复开放；已有预约不受影响。"""
    slot = service.get_slot(slot_id, point=service.get_point(point_id))
    return _commit(
        lambda: service.update_slot(
            actor=g.user, slot=slot, capacity=args.get("capacity"), active=args.get("active")
        )
    )


@blp.get("/service-points/<string:point_id>/availability")
@access.public
@blp.arguments(AvailabilityQuerySchema, location="query")
@blp.response(200, AvailabilitySchema)
def availability(args, point_id):
    """可预约的时段及剩余名额（法定节假日不开放，列在 closed_days）。"""
    point = service.get_point(point_id)
    result = service.availability(point=point, start=args["from_"], end=args["to"])
    return {"service_point_id": point.public_id, **result}


# Bookings


@blp.post("/appointments")
@access.roles(*BOOKERS, refusal=service.no_residence)
@blp.arguments(BookingCreateSchema)
@blp.response(201, BookingSchema)
@blp.doc(**idempotency.DOC)
def book(args):
    """预约：居民为自己预约，或书记为本社区居民代约。约满返回 409 slot_full；重试带同一 Idempotency-Key。"""

    def duplicate():
        if service.active_booking_id(
            resident_public_id=args["resident_id"],
            actor=g.user,
            slot_public_id=args["slot_id"],
            day=args["date"],
        ):
            raise service.already_booked()

    booking = idempotency.create_once(
        "appointments",
        Booking,
        lambda: service.book(
            actor=g.user,
            slot_public_id=args["slot_id"],
            day=args["date"],
            errand_type=args["errand_type"],
            note=args["note"],
            resident_public_id=args["resident_id"],
        ),
        on_conflict=duplicate,
    )
    return _show(booking)


@blp.get("/appointments")
@access.roles(*VIEWERS)
@blp.arguments(BookingListQuerySchema, location="query")
@blp.response(200, BookingPageSchema)
def list_bookings(args):
    """预约列表，新的在前：居民看自己的，书记看本社区的，街道管理员看全街道的。"""
    page = service.bookings_page(
        viewer=g.user,
        state=args["state"],
        point_public_id=args["service_point_id"],
        day=args["date"],
        limit=args["limit"],
        cursor=args["cursor"],
    )
    page["items"] = [_show(b) for b in page["items"]]
    return page


@blp.get("/appointments/<string:booking_id>")
@access.signed_in
@blp.response(200, BookingSchema)
def get_booking(booking_id):
    """预约详情。"""
    return _show(service.get_visible_booking(booking_id, viewer=g.user))


@blp.post("/appointments/<string:booking_id>/move")
@access.roles(*BOOKERS)
@blp.arguments(BookingMoveSchema)
@blp.response(200, BookingSchema)
def move(args, booking_id):
    """改约到其他时段（时段开始前）；新时段约满返回 409 slot_full。"""
    booking = service.get_visible_booking(booking_id, viewer=g.user)
    return _show(
        _commit(
            lambda: service.move(
                actor=g.user, booking=booking, slot_public_id=args["slot_id"], day=args["date"]
            )
        )
    )


@blp.post("/appointments/<string:booking_id>/cancel")
@access.roles(*VIEWERS)
@blp.arguments(BookingCancelSchema)
@blp.response(200, BookingSchema)
def cancel(args, booking_id):
    """取消预约（时段开始前），名额释放。"""
    booking = service.get_visible_booking(booking_id, viewer=g.user)
    return _show(_commit(lambda: service.cancel(actor=g.user, booking=booking, reason=args["reason"])))
