from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend import clock
from backend.db import PublicIdMixin, TimestampMixin, UTCDateTime, db
from backend.orders.states import ACTION_LABELS, STATE_LABELS, STATES
from backend.privacy.crypto import EncryptedText
from backend.sla.calendar import Unit
from backend.sla.models import NO_DEADLINE, SlaClock
from backend.sla.rules import SERVICE_KIND_LABELS, Limit

# States a secretary has to act on: accept, dispatch, re-dispatch, chase.
NEEDS_ACTION = ("submitted", "accepted", "returned", "dispatched")
# The board's default filter as SQL, written out with its constants: the index over it is only used when the
# query's condition is this very text (PostgreSQL cannot match a partial index against bound parameters).
NEEDS_ACTION_SQL = (
    "state IN (" + ", ".join(f"'{s}'" for s in NEEDS_ACTION) + ") OR extension_request IS NOT NULL"
)
# An organization's open load, for recommendations: held and not yet resolved, or offered to it.
LOAD_STATES = ("in_progress", "suspended", "taken", "dispatched")
LOAD_STATES_SQL = "state IN (" + ", ".join(f"'{s}'" for s in LOAD_STATES) + ")"
# Orders an organization holds or was dispatched: the condition of the indexes by organization.
HAS_ORGANIZATION_SQL = "organization_id IS NOT NULL"
# Sorting the dispatch board: urgent first, professional last.
URGENCY_RANK = {"urgent": 0, "targeted": 1, "daily": 2, "professional": 3}
RATING_LABELS = {5: "很满意", 4: "满意", 3: "较满意", 2: "基本满意", 1: "不满意"}


def extension_asked(request: dict) -> Limit:
    """The extension an order's pending request (``Order.extension_request``) asks for."""
    return Limit(request["amount"], Unit(request["unit"]))


class Order(PublicIdMixin, TimestampMixin, db.Model):
    """A resident's request for help (点单), from placing to closing. ``state`` follows orders.states."""

    PUBLIC_ID_PREFIX = "od"
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="state"),
        Index("ix_orders_resident", "resident_id", "id"),
        # A grid's orders, newest first (its grid worker's list).
        Index("ix_orders_grid", "grid_id", "id"),
        Index("ix_orders_community_state", "community_id", "state", "id"),
        # The dispatch board's order: urgency, then the nearest deadline, then age.
        Index("ix_orders_board", "community_id", "urgency_rank", "due_at", "id"),
        # The same order over just the orders that need a secretary (the board's default): finished orders,
        # the bulk of the table, sort among them by deadline and would be read through and thrown away.
        Index(
            "ix_orders_board_needs_action",
            "community_id",
            "urgency_rank",
            "due_at",
            "id",
            postgresql_where=text(NEEDS_ACTION_SQL),
            sqlite_where=text(NEEDS_ACTION_SQL),
        ),
        # Orders with no organization yet (every new one, and pools) are never looked up by organization:
        # leaving them out spares placing an order the index write.
        Index(
            "ix_orders_organization_state",
            "organization_id",
            "state",
            "id",
            postgresql_where=text(HAS_ORGANIZATION_SQL),
            sqlite_where=text(HAS_ORGANIZATION_SQL),
        ),
        # Recommendations' familiarity: who served this grid lately, read from the index alone; only orders
        # an organization has had count, so the rest stay out of it.
        Index(
            "ix_orders_grid_recent",
            "grid_id",
            "created_at",
            "organization_id",
            postgresql_where=text(HAS_ORGANIZATION_SQL),
            sqlite_where=text(HAS_ORGANIZATION_SQL),
        ),
    )

    # The day placed and the id (orders.placing), so unique by construction: no unique index to keep.
    number: Mapped[str] = mapped_column(String(20))
    resident_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # 代录: a grid worker or secretary placed it for the resident.
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entered_by_role: Mapped[str | None] = mapped_column(String(32))
    category_id: Mapped[int] = mapped_column(ForeignKey("service_categories.id"))
    service_kind: Mapped[str] = mapped_column(String(16))
    urgency_rank: Mapped[int] = mapped_column(SmallInteger)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    description: Mapped[str] = mapped_column(Text)
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    # Contact details: encrypted at rest, shown in full only to those the privacy rules allow.
    address: Mapped[str] = mapped_column(EncryptedText)
    contact_name: Mapped[str] = mapped_column(String(64))
    contact_phone: Mapped[str] = mapped_column(EncryptedText)
    latitude: Mapped[float | None] = mapped_column()
    longitude: Mapped[float | None] = mapped_column()
    preferred_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    preferred_end: Mapped[datetime | None] = mapped_column(UTCDateTime)

    state: Mapped[str] = mapped_column(String(16), default="submitted")
    # The organization dispatched to (single dispatch) or holding it (after take); null in a pool.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    pool: Mapped[bool] = mapped_column(Boolean, default=False)
    # The deadline of the clock running now (accept or complete), for sorting boards; null when none runs.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=NO_DEADLINE)
    # When that clock's yellow card comes (its warning); null when none runs.
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    is_supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    possible_duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    # An extension asked for and not yet decided: {"amount", "unit", "reason", "requested_at"}.
    extension_request: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    extension_granted: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    # Two people acting at once: the second write finds the version moved and gets a 409.
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}

    category = relationship("ServiceCategory", lazy="joined")

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def service_kind_label(self) -> str:
        return SERVICE_KIND_LABELS[self.service_kind]


class OrderStateCount(db.Model):
    """How many orders a community has in one state: the board's counts, read from a handful of rows.

    Kept by triggers on orders (migration 0009), so every change of state, whatever makes it, counts;
    the application only reads it. Derived data: no foreign key, so it never holds up removing orders.
    """

    __tablename__ = "order_state_counts"

    community_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)


class OrganizationRecord(db.Model):
    """What ranking an organization reads, in one narrow row: its record over the recommendations' history
    window (the last 180 days: residents' ratings of its orders and its completion clocks, on time or not),
    its open load, and a copy of its capacity and dispatch weight.

    The record is kept exact as it changes (a rating, a completion clock stopping:
    orders.recommend.refresh_records in the same transaction) and swept hourly for what ages out of the
    window. The rest is kept by triggers (migration 0013): a row is made with its organization, the copies
    follow the organization, and the open load follows the orders that make it. Ranking hundreds of
    organizations reads one row each rather than their whole history, their orders and the organization.
    """

    __tablename__ = "organization_records"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    ratings: Mapped[int] = mapped_column(Integer, default=0)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[int] = mapped_column(Integer, default=0)
    finished_on_time: Mapped[int] = mapped_column(Integer, default=0)
    # None until first counted.
    counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Copies of the organization's, and its orders in LOAD_STATES: written by triggers only.
    capacity: Mapped[int] = mapped_column(Integer, server_default="0")
    dispatch_weight: Mapped[float] = mapped_column(Float, server_default="1")
    open_load: Mapped[int] = mapped_column(Integer, server_default="0")


class OrderOffer(db.Model):
    """An organization an order is (or was) dispatched to: one for a direct dispatch, several for a pool."""

    __tablename__ = "order_offers"
    __table_args__ = (Index("ix_order_offers_organization", "organization_id", "active", "order_id"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # Still open to take; false once taken by anyone, returned, or dispatched elsewhere.
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OrderEvent(db.Model):
    """One step of an order's timeline: who (or the system) did what, when, from which state to which."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order", "order_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # Null when Sandan itself acted (auto-dispatch, auto-close, overdue).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


def shown_event_data(data: dict) -> dict:
    """An event's data as the API shows it. A placement written before the API named its likely duplicate
    by public id holds the duplicate's row id: it is shown by its public id too (a lookup by primary key,
    for those old events alone)."""
    duplicate = data.get("possible_duplicate_of")
    if type(duplicate) is not int:
        return data
    public_id = db.session.scalar(select(Order.public_id).where(Order.id == duplicate))
    return {**data, "possible_duplicate_of": public_id}


class OrderAssignment(db.Model):
    """A volunteer of the holding organization assigned to carry the order out."""

    __tablename__ = "order_assignments"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), primary_key=True, index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    assigned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class Rating(db.Model):
    """The resident's one rating of a closed order: five levels, tags and a comment."""

    __tablename__ = "order_ratings"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 5", name="level"),
        # Recommendations average an organization's recent ratings from the index alone.
        Index("ix_order_ratings_organization_recent", "organization_id", "created_at", "level"),
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    @property
    def level_label(self) -> str:
        return RATING_LABELS[self.level]


# Recommendations' on-time rate reads an organization's finished completion clocks. Declared here, beside the
# query's other indexes, because it serves the orders domain; created by migration 0006. Everything the
# query touches is in the index, so it is answered without visiting the table's 2 clocks per order.
Index(
    "ix_sla_clocks_organization_finished",
    SlaClock.organization_id,
    SlaClock.name,
    SlaClock.state,
    SlaClock.stopped_at,
    postgresql_include=["subject_type", "on_time"],
)
