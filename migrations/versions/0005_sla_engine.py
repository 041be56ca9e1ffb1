"""SLA engine: policy overrides, clocks on tracked items, supervision (督办) records

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sla_policy_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_kind", sa.String(length=16), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=False),
        sa.Column("accept_amount", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("accept_unit", sa.String(length=16), nullable=False),
        sa.Column("complete_amount", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("complete_unit", sa.String(length=16), nullable=False),
        sa.Column("extension_amount", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("extension_unit", sa.String(length=16), nullable=True),
        sa.Column("return_amount", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("return_unit", sa.String(length=16), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "service_kind IN ('urgent', 'daily', 'targeted', 'professional')",
            name=op.f("ck_sla_policy_overrides_service_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_sla_policy_overrides_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policy_overrides")),
    )
    op.create_index(
        "uq_sla_policy_overrides_kind_category",
        "sla_policy_overrides",
        ["service_kind", "category_code"],
        unique=True,
    )
    op.create_table(
        "sla_clocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("escalates", sa.Boolean(), nullable=False),
        sa.Column("extension_amount", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("extension_unit", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pauses", sa.JSON(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assumed_years", sa.JSON(), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('running', 'paused', 'stopped')", name=op.f("ck_sla_clocks_state")),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_sla_clocks_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sla_clocks_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clocks")),
    )
    op.create_index(
        "ix_sla_clocks_community_overdue", "sla_clocks", ["community_id", "overdue_at"], unique=False
    )
    op.create_index(
        "ix_sla_clocks_organization_overdue", "sla_clocks", ["organization_id", "overdue_at"], unique=False
    )
    op.create_index(
        "ix_sla_clocks_overdue_owed",
        "sla_clocks",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("state = 'running' AND overdue_at IS NULL"),
        sqlite_where=sa.text("state = 'running' AND overdue_at IS NULL"),
    )
    op.create_index(
        "ix_sla_clocks_subject", "sla_clocks", ["subject_type", "subject_id", "name"], unique=False
    )
    op.create_index(
        "ix_sla_clocks_warning_owed",
        "sla_clocks",
        ["warn_at"],
        unique=False,
        postgresql_where=sa.text("state = 'running' AND warned_at IS NULL"),
        sqlite_where=sa.text("state = 'running' AND warned_at IS NULL"),
    )
    op.create_table(
        "supervisions",
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("clock_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("raised_by_id", sa.Integer(), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.CheckConstraint(
            "reason IN ('overdue', 'bad_rating', 'second_reopen', 'repeated_return', 'manual')",
            name=op.f("ck_supervisions_reason"),
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_supervisions_status")),
        sa.ForeignKeyConstraint(
            ["clock_id"], ["sla_clocks.id"], name=op.f("fk_supervisions_clock_id_sla_clocks")
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["users.id"], name=op.f("fk_supervisions_closed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_supervisions_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_supervisions_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["raised_by_id"], ["users.id"], name=op.f("fk_supervisions_raised_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervisions")),
        sa.UniqueConstraint("public_id", name=op.f("uq_supervisions_public_id")),
    )
    op.create_index(
        "ix_supervisions_community_status", "supervisions", ["community_id", "status", "id"], unique=False
    )
    op.create_index("ix_supervisions_subject", "supervisions", ["subject_type", "subject_id"], unique=False)
    op.create_index("uq_supervisions_clock_reason", "supervisions", ["clock_id", "reason"], unique=True)
    op.create_index(
        "ix_outbox_messages_in_flight",
        "outbox_messages",
        ["run_at"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NOT NULL AND done_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NOT NULL AND done_at IS NULL"),
    )


def downgrade():
    op.drop_index("ix_outbox_messages_in_flight", table_name="outbox_messages")
    op.drop_table("supervisions")
    op.drop_table("sla_clocks")
    op.drop_table("sla_policy_overrides")
