"""Appointments (网上预约): service points, weekly opening slots, per-date occurrences and bookings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# One active booking per resident and occurrence, as backend.appointments.models writes it.
ACTIVE_SQL = "state = 'booked'"


def upgrade():
    op.create_table(
        "service_points",
        sa.Column("street_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("errand_types", sa.JSON(), nullable=False),
        sa.Column("booking_days_ahead", sa.SmallInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "booking_days_ahead BETWEEN 1 AND 90", name=op.f("ck_service_points_booking_days_ahead")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_service_points_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["street_id"], ["streets.id"], name=op.f("fk_service_points_street_id_streets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_points")),
        sa.UniqueConstraint("public_id", name=op.f("uq_service_points_public_id")),
    )
    op.create_index(
        "ix_service_points_street_community",
        "service_points",
        ["street_id", "community_id", "id"],
        unique=False,
    )
    op.create_table(
        "opening_slots",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("capacity BETWEEN 1 AND 1000", name=op.f("ck_opening_slots_capacity")),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_opening_slots_time_order")),
        sa.CheckConstraint("weekday BETWEEN 1 AND 7", name=op.f("ck_opening_slots_weekday")),
        sa.ForeignKeyConstraint(
            ["point_id"], ["service_points.id"], name=op.f("fk_opening_slots_point_id_service_points")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_slots")),
        sa.UniqueConstraint("public_id", name=op.f("uq_opening_slots_public_id")),
    )
    op.create_index(
        "ix_opening_slots_point", "opening_slots", ["point_id", "weekday", "start_time"], unique=False
    )
    op.create_table(
        "slot_occurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.CheckConstraint("booked >= 0", name=op.f("ck_slot_occurrences_booked")),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["opening_slots.id"], name=op.f("fk_slot_occurrences_slot_id_opening_slots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_occurrences")),
        sa.UniqueConstraint("slot_id", "day", name=op.f("uq_slot_occurrences_slot_id_day")),
    )
    op.create_index("ix_slot_occurrences_starts", "slot_occurrences", ["starts_at"], unique=False)
    op.create_table(
        "appointment_bookings",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("errand_type", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("booked_by_id", sa.Integer(), nullable=False),
        sa.Column("booked_by_role", sa.String(length=32), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        sa.Column("reminded_version", sa.Integer(), nullable=True),
        sa.Column("moved_count", sa.Integer(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by_id", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=False),
        sa.Column("attended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("errand_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('booked', 'cancelled', 'attended')", name=op.f("ck_appointment_bookings_state")
        ),
        sa.ForeignKeyConstraint(
            ["booked_by_id"], ["users.id"], name=op.f("fk_appointment_bookings_booked_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["cancelled_by_id"], ["users.id"], name=op.f("fk_appointment_bookings_cancelled_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_appointment_bookings_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["occurrence_id"],
            ["slot_occurrences.id"],
            name=op.f("fk_appointment_bookings_occurrence_id_slot_occurrences"),
        ),
        sa.ForeignKeyConstraint(
            ["point_id"], ["service_points.id"], name=op.f("fk_appointment_bookings_point_id_service_points")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["users.id"], name=op.f("fk_appointment_bookings_resident_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["opening_slots.id"], name=op.f("fk_appointment_bookings_slot_id_opening_slots")
        ),
        sa.ForeignKeyConstraint(
            ["street_id"], ["streets.id"], name=op.f("fk_appointment_bookings_street_id_streets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_bookings")),
        sa.UniqueConstraint("public_id", name=op.f("uq_appointment_bookings_public_id")),
    )
    op.create_index(
        "ix_appointment_bookings_community", "appointment_bookings", ["community_id", "id"], unique=False
    )
    op.create_index("ix_appointment_bookings_point", "appointment_bookings", ["point_id", "id"], unique=False)
    op.create_index(
        "ix_appointment_bookings_resident", "appointment_bookings", ["resident_id", "id"], unique=False
    )
    op.create_index(
        "ix_appointment_bookings_street", "appointment_bookings", ["street_id", "id"], unique=False
    )
    op.create_index(
        "uq_appointment_bookings_active",
        "appointment_bookings",
        ["occurrence_id", "resident_id"],
        unique=True,
        postgresql_where=sa.text(ACTIVE_SQL),
        sqlite_where=sa.text(ACTIVE_SQL),
    )


def downgrade():
    op.drop_table("appointment_bookings")
    op.drop_table("slot_occurrences")
    op.drop_table("opening_slots")
    op.drop_table("service_points")
