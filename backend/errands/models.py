from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend import clock
from backend.db import PublicIdMixin, TimestampMixin, UTCDateTime, db
from backend.errands.states import ACTION_LABELS, ACTION_SENTENCES, AGENT_STATES, STATE_LABELS, STATES
from backend.privacy.crypto import EncryptedJSON, EncryptedText
from backend.sla.models import NO_DEADLINE

OUTCOMES = ("approved", "refused")
OUTCOME_LABELS = {"approved": "已批准", "refused": "未批准"}
RATING_LABELS = {5: "很满意", 4: "满意", 3: "较满意", 2: "基本满意", 1: "不满意"}
# An agent's queue (the steps they carry out) as SQL, written out with its constants: the partial index over
# it is only used when the query's condition is this very text (PostgreSQL cannot match a partial index
# against bound parameters). The migration keeps its own copy.
AGENT_QUEUE_SQL = "state IN (" + ", ".join(f"'{s}'" for s in sorted(AGENT_STATES)) + ")"


class ErrandType(PublicIdMixin, TimestampMixin, db.Model):
    """A kind of errand (低保申请, 代购药品...): its definition lives in versions; errands keep theirs."""

    PUBLIC_ID_PREFIX = "et"
    __tablename__ = "errand_types"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)


class ErrandTypeVersion(db.Model):
    """One version of a type's definition (errands.definitions); never edited, only followed by another."""

    __tablename__ = "errand_type_versions"
    __table_args__ = (UniqueConstraint("type_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("errand_types.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict] = mapped_column(JSON)
    # Null for the versions shipped with the product.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    type = relationship("ErrandType", lazy="joined")


class Errand(PublicIdMixin, TimestampMixin, db.Model):
    """One red proxy errand (红色代办) for a resident, from the appointment to completion."""

    PUBLIC_ID_PREFIX = "er"
    __tablename__ = "errands"
    __table_args__ = (
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="state"),
        CheckConstraint("outcome IS NULL OR outcome IN ('approved', 'refused')", name="outcome"),
        Index("ix_errands_resident", "resident_id", "id"),
        # An agent's queue: their errands in the steps they carry out, by the next deadline. Only those: an
        # agent's finished errands (most of theirs, in time) sort last with no deadline, among the paused
        # ones, and would be read through and thrown away on every page that reaches the paused ones.
        Index(
            "ix_errands_agent_queue",
            "agent_id",
            "due_at",
            "id",
            postgresql_where=text(AGENT_QUEUE_SQL),
            sqlite_where=text(AGENT_QUEUE_SQL),
        ),
        # The queue filtered to one state (any state, finished ones included), in the same order.
        Index("ix_errands_agent_state", "agent_id", "state", "due_at", "id"),
        Index("ix_errands_community_board", "community_id", "due_at", "id"),
        Index("ix_errands_type_accepted", "type_id", "accepted_at"),
    )

    number: Mapped[str] = mapped_column(String(20), unique=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("errand_types.id"))
    # The definition this errand runs by, fixed at creation: later edits of the type do not move it.
    type_version_id: Mapped[int] = mapped_column(ForeignKey("errand_type_versions.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The applicant's name, for the office and the public notice (公示) of a 低保 approval.
    applicant_name: Mapped[str] = mapped_column(String(64))
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    # The appointment booking (网上预约) it came from, by the booking's public id.
    appointment_id: Mapped[str | None] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text, default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(24), default="appointed")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=NO_DEADLINE)
    # When the step's clock gives its yellow card (its warning); null when none runs.
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_overdue: Mapped[bool] = mapped_column(Boolean, default=False)

    # Materials: {code: true} for each one received; the ones still missing while pending.
    materials: Mapped[dict] = mapped_column(JSON, default=dict)
    missing_materials: Mapped[list] = mapped_column(JSON, default=list)
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eligibility_note: Mapped[str] = mapped_column(Text, default="")
    # The hand-over slip (交接单) signed when the materials were collected.
    handover: Mapped[dict | None] = mapped_column(JSON)
    office: Mapped[str] = mapped_column(String(200), default="")
    receipt_number: Mapped[str] = mapped_column(String(64), default="")

    # Purchases (代购): the items, and the cash in fen: received = spent + change once a result is recorded,
    # or the errand fails or is cancelled holding the cash (nothing spent then, all of it handed back).
    # The items are a drug list, health information: encrypted like the sensitive values below (null when
    # there is none), [{drug_name, quantity, prescription_required, prescription_present}].
    items: Mapped[list | None] = mapped_column(EncryptedJSON)
    cash_received_fen: Mapped[int | None] = mapped_column(Integer)
    amount_spent_fen: Mapped[int | None] = mapped_column(Integer)
    change_returned_fen: Mapped[int | None] = mapped_column(Integer)

    outcome: Mapped[str | None] = mapped_column(String(16))
    result_note: Mapped[str] = mapped_column(Text, default="")
    # An approved allowance per month, in fen (the public notice's amount).
    amount_fen: Mapped[int | None] = mapped_column(Integer)
    valid_until: Mapped[str | None] = mapped_column(String(10))

    # Sensitive personal information: encrypted at rest, masked in every response, revealed only to the
    # assigned agent while the errand is open (logged). Stored through privacy.store, consent first.
    id_number: Mapped[str | None] = mapped_column(EncryptedText)
    disability: Mapped[str | None] = mapped_column(EncryptedText)
    diagnosis: Mapped[str | None] = mapped_column(EncryptedText)
    subsistence_status: Mapped[str | None] = mapped_column(EncryptedText)
    insurance_card: Mapped[str | None] = mapped_column(EncryptedText)
    certificate_number: Mapped[str | None] = mapped_column(EncryptedText)

    close_reason: Mapped[str] = mapped_column(Text, default="")
    # A cancellation the resident asked for: taken out of the completion rate's denominator.
    cancelled_by_resident: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str] = mapped_column(Text, default="")
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}

    type = relationship("ErrandType", lazy="joined")
    type_version = relationship("ErrandTypeVersion", lazy="joined")

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def definition(self) -> dict:
        return self.type_version.definition

    @property
    def title(self) -> str:
        return self.definition["name"]


class ErrandEvent(db.Model):
    """One step of an errand's timeline: who (or Sandan) did what, when, from which state to which."""

    __tablename__ = "errand_events"
    __table_args__ = (Index("ix_errand_events_errand", "errand_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    errand_id: Mapped[int] = mapped_column(ForeignKey("errands.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    # Words for the resident; never a sensitive value.
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)

    @property
    def sentence(self) -> str:
        text = ACTION_SENTENCES.get(self.action, self.action_label)
        return f"{text}：{self.note}" if self.note else text
