"""Errands (红色代办): versioned errand types, errands with their sensitive fields (encrypted),
timeline events

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# An agent's queue (errands.states.AGENT_STATES), as backend.errands.models writes it.
AGENT_QUEUE_SQL = (
    "state IN ('accepted', 'lodged', 'materials_collected', 'materials_pending', 'result', 'under_review')"
)


def upgrade():
    op.create_table(
        "errand_types",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errand_types")),
        sa.UniqueConstraint("code", name=op.f("uq_errand_types_code")),
        sa.UniqueConstraint("public_id", name=op.f("uq_errand_types_public_id")),
    )
    op.create_table(
        "errand_type_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_errand_type_versions_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["type_id"], ["errand_types.id"], name=op.f("fk_errand_type_versions_type_id_errand_types")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errand_type_versions")),
        sa.UniqueConstraint("type_id", "version", name=op.f("uq_errand_type_versions_type_id_version")),
    )
    op.create_table(
        "errands",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("type_version_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("applicant_name", sa.String(length=64), nullable=False),
        sa.Column("entered_by_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.String(length=24), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_overdue", sa.Boolean(), nullable=False),
        sa.Column("materials", sa.JSON(), nullable=False),
        sa.Column("missing_materials", sa.JSON(), nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("eligibility_note", sa.Text(), nullable=False),
        sa.Column("handover", sa.JSON(), nullable=True),
        sa.Column("office", sa.String(length=200), nullable=False),
        sa.Column("receipt_number", sa.String(length=64), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("cash_received_fen", sa.Integer(), nullable=True),
        sa.Column("amount_spent_fen", sa.Integer(), nullable=True),
        sa.Column("change_returned_fen", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("result_note", sa.Text(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=True),
        sa.Column("valid_until", sa.String(length=10), nullable=True),
        sa.Column("id_number", sa.Text(), nullable=True),
        sa.Column("disability", sa.Text(), nullable=True),
        sa.Column("diagnosis", sa.Text(), nullable=True),
        sa.Column("subsistence_status", sa.Text(), nullable=True),
        sa.Column("insurance_card", sa.Text(), nullable=True),
        sa.Column("certificate_number", sa.Text(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=False),
        sa.Column("cancelled_by_resident", sa.Boolean(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('approved', 'refused')", name=op.f("ck_errands_outcome")
        ),
        sa.CheckConstraint(
            "state IN ('appointed', 'accepted', 'materials_pending', 'materials_collected', 'lodged', "
            "'under_review', 'result', 'returned_to_resident', 'completed', 'cancelled', 'failed')",
            name=op.f("ck_errands_state"),
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_errands_agent_id_users")),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_errands_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["entered_by_id"], ["users.id"], name=op.f("fk_errands_entered_by_id_users")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_errands_grid_id_grids")),
        sa.ForeignKeyConstraint(["resident_id"], ["users.id"], name=op.f("fk_errands_resident_id_users")),
        sa.ForeignKeyConstraint(
            ["type_id"], ["errand_types.id"], name=op.f("fk_errands_type_id_errand_types")
        ),
        sa.ForeignKeyConstraint(
            ["type_version_id"],
            ["errand_type_versions.id"],
            name=op.f("fk_errands_type_version_id_errand_type_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errands")),
        sa.UniqueConstraint("number", name=op.f("uq_errands_number")),
        sa.UniqueConstraint("public_id", name=op.f("uq_errands_public_id")),
    )
    op.create_index(
        "ix_errands_agent_queue",
        "errands",
        ["agent_id", "due_at", "id"],
        unique=False,
        postgresql_where=sa.text(AGENT_QUEUE_SQL),
        sqlite_where=sa.text(AGENT_QUEUE_SQL),
    )
    op.create_index("ix_errands_agent_state", "errands", ["agent_id", "state", "due_at", "id"], unique=False)
    op.create_index("ix_errands_community_board", "errands", ["community_id", "due_at", "id"], unique=False)
    op.create_index("ix_errands_resident", "errands", ["resident_id", "id"], unique=False)
    op.create_index("ix_errands_type_accepted", "errands", ["type_id", "accepted_at"], unique=False)
    op.create_table(
        "errand_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("errand_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_errand_events_actor_id_users")),
        sa.ForeignKeyConstraint(
            ["errand_id"], ["errands.id"], name=op.f("fk_errand_events_errand_id_errands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errand_events")),
    )
    op.create_index("ix_errand_events_errand", "errand_events", ["errand_id", "id"], unique=False)


def downgrade():
    op.drop_index("ix_errand_events_errand", table_name="errand_events")
    op.drop_table("errand_events")
    for name in (
        "ix_errands_type_accepted",
        "ix_errands_resident",
        "ix_errands_community_board",
        "ix_errands_agent_state",
        "ix_errands_agent_queue",
    ):
        op.drop_index(name, table_name="errands")
    op.drop_table("errands")
    op.drop_table("errand_type_versions")
    op.drop_table("errand_types")
