"""notifications

The in-app inbox (notifications and their delivery history), the WeChat subscribe-message templates per
event, and the users' one-time subscription grants.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Data is not loaded here: backend.notify.service.seed_templates() loads the shipped templates.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUSES = "'pending', 'retrying', 'sent', 'no_grant', 'refused', 'failed', 'disabled', 'inbox_only'"


def upgrade():
    op.create_table(
        "notifications",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("page", sa.String(length=256), nullable=True),
        sa.Column("subject_type", sa.String(length=32), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=True),
        sa.Column("msgid", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.String(length=200), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_notifications_status")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("public_id", name=op.f("uq_notifications_public_id")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_user_id_id", ["user_id", "id"], unique=False)
        batch_op.create_index("ix_notifications_user_unread", ["user_id", "read_at", "id"], unique=False)
        batch_op.create_index("ix_notifications_subject", ["subject_type", "subject_id"], unique=False)

    op.create_table(
        "notification_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_history_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_history")),
    )
    with op.batch_alter_table("notification_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_history_notification_id"), ["notification_id"], unique=False
        )

    op.create_table(
        "notification_templates",
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_notification_templates_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("event", name=op.f("pk_notification_templates")),
    )
    with op.batch_alter_table("notification_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_templates_template_id"), ["template_id"], unique=False
        )

    op.create_table(
        "subscription_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("remaining >= 0", name=op.f("ck_subscription_grants_remaining")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_subscription_grants_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_grants")),
        sa.UniqueConstraint(
            "user_id", "template_id", name=op.f("uq_subscription_grants_user_id_template_id")
        ),
    )


def downgrade():
    op.drop_table("subscription_grants")
    with op.batch_alter_table("notification_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_templates_template_id"))
    op.drop_table("notification_templates")
    with op.batch_alter_table("notification_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_history_notification_id"))
    op.drop_table("notification_history")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_subject")
        batch_op.drop_index("ix_notifications_user_unread")
        batch_op.drop_index("ix_notifications_user_id_id")
    op.drop_table("notifications")
