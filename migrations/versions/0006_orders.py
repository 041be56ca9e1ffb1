"""Orders: the service catalog, orders with their offers, events, assignments and ratings, uploads,
idempotency keys, and organizations' dispatch weight

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The dispatch board's default filter, as backend.orders.models writes it (a migration keeps its own copy).
NEEDS_ACTION_SQL = (
    "state IN ('submitted', 'accepted', 'returned', 'dispatched') OR extension_request IS NOT NULL"
)
# Recommendations' open load, as backend.orders.models writes it.
LOAD_STATES_SQL = "state IN ('in_progress', 'suspended', 'taken', 'dispatched')"


def upgrade():
    op.create_table(
        "service_categories",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("service_kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "service_kind IN ('urgent', 'daily', 'targeted', 'professional')",
            name=op.f("ck_service_categories_service_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_service_categories_code")),
        sa.UniqueConstraint("public_id", name=op.f("uq_service_categories_public_id")),
    )
    op.create_table(
        "idempotent_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_idempotent_requests_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotent_requests")),
    )
    op.create_index(
        "uq_idempotent_requests_user_key", "idempotent_requests", ["user_id", "endpoint", "key"], unique=True
    )
    op.create_table(
        "uploads",
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("attached_type", sa.String(length=32), nullable=True),
        sa.Column("attached_id", sa.Integer(), nullable=True),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_uploads_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("public_id", name=op.f("uq_uploads_public_id")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_uploads_storage_key")),
    )
    op.create_index("ix_uploads_attached", "uploads", ["attached_type", "attached_id"], unique=False)
    op.create_index(op.f("ix_uploads_owner_id"), "uploads", ["owner_id"], unique=False)
    op.create_table(
        "orders",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("entered_by_id", sa.Integer(), nullable=True),
        sa.Column("entered_by_role", sa.String(length=32), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("service_kind", sa.String(length=16), nullable=False),
        sa.Column("urgency_rank", sa.SmallInteger(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("contact_name", sa.String(length=64), nullable=False),
        sa.Column("contact_phone", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("preferred_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("preferred_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("pool", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_overdue", sa.Boolean(), nullable=False),
        sa.Column("is_supervised", sa.Boolean(), nullable=False),
        sa.Column("possible_duplicate_of_id", sa.Integer(), nullable=True),
        sa.Column("return_count", sa.Integer(), nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("dispatch_count", sa.Integer(), nullable=False),
        sa.Column("extension_request", sa.JSON(), nullable=True),
        sa.Column("extension_granted", sa.Boolean(), nullable=False),
        sa.Column("resolution_note", sa.Text(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            (
                "state IN ('submitted', 'accepted', 'rejected', 'dispatched', 'returned', 'taken', "
                "'in_progress', 'suspended', 'resolved', 'closed', 'cancelled')"
            ),
            name=op.f("ck_orders_state"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"], ["service_categories.id"], name=op.f("fk_orders_category_id_service_categories")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_orders_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["entered_by_id"], ["users.id"], name=op.f("fk_orders_entered_by_id_users")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_orders_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_orders_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["possible_duplicate_of_id"],
            ["orders.id"],
            name=op.f("fk_orders_possible_duplicate_of_id_orders"),
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["users.id"], name=op.f("fk_orders_resident_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
        sa.UniqueConstraint("public_id", name=op.f("uq_orders_public_id")),
    )
    op.create_index(
        "ix_orders_board", "orders", ["community_id", "urgency_rank", "due_at", "id"], unique=False
    )
    op.create_index(
        "ix_orders_board_needs_action",
        "orders",
        ["community_id", "urgency_rank", "due_at", "id"],
        unique=False,
        postgresql_where=sa.text(NEEDS_ACTION_SQL),
        sqlite_where=sa.text(NEEDS_ACTION_SQL),
    )
    op.create_index("ix_orders_community_state", "orders", ["community_id", "state", "id"], unique=False)
    op.create_index(
        "ix_orders_open_duplicates", "orders", ["resident_id", "category_id", "state"], unique=False
    )
    op.create_index(
        "ix_orders_organization_state", "orders", ["organization_id", "state", "id"], unique=False
    )
    op.create_index("ix_orders_resident", "orders", ["resident_id", "id"], unique=False)
    op.create_index(
        "ix_orders_grid_recent", "orders", ["grid_id", "created_at", "organization_id"], unique=False
    )
    op.create_index(
        "ix_orders_organization_open",
        "orders",
        ["organization_id"],
        unique=False,
        postgresql_where=sa.text(LOAD_STATES_SQL),
        sqlite_where=sa.text(LOAD_STATES_SQL),
    )
    op.create_table(
        "order_assignments",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"], ["users.id"], name=op.f("fk_order_assignments_assigned_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_assignments_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"], ["volunteers.id"], name=op.f("fk_order_assignments_volunteer_id_volunteers")
        ),
        sa.PrimaryKeyConstraint("order_id", "volunteer_id", name=op.f("pk_order_assignments")),
    )
    op.create_index(
        op.f("ix_order_assignments_volunteer_id"), "order_assignments", ["volunteer_id"], unique=False
    )
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_order_events_actor_id_users")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index("ix_order_events_order", "order_events", ["order_id", "id"], unique=False)
    op.create_table(
        "order_offers",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_offers_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_order_offers_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("order_id", "organization_id", name=op.f("pk_order_offers")),
    )
    op.create_index(
        "ix_order_offers_organization",
        "order_offers",
        ["organization_id", "active", "order_id"],
        unique=False,
    )
    op.create_table(
        "order_ratings",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level BETWEEN 1 AND 5", name=op.f("ck_order_ratings_level")),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_order_ratings_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_ratings_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_order_ratings_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_ratings")),
    )
    op.create_index(op.f("ix_order_ratings_community_id"), "order_ratings", ["community_id"], unique=False)
    op.create_index(
        "ix_order_ratings_organization_recent",
        "order_ratings",
        ["organization_id", "created_at", "level"],
        unique=False,
    )
    op.create_index(
        "ix_sla_clocks_organization_finished",
        "sla_clocks",
        ["organization_id", "name", "state", "stopped_at"],
        unique=False,
        postgresql_include=["subject_type", "on_time"],
    )
    op.add_column(
        "organizations", sa.Column("dispatch_weight", sa.Float(), nullable=False, server_default="1.0")
    )
    with op.batch_alter_table("organizations") as batch:
        batch.alter_column("dispatch_weight", server_default=None)


def downgrade():
    op.drop_index("ix_sla_clocks_organization_finished", table_name="sla_clocks")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("dispatch_weight")
    for table in (
        "order_ratings",
        "order_offers",
        "order_events",
        "order_assignments",
        "orders",
        "uploads",
        "idempotent_requests",
        "service_categories",
    ):
        op.drop_table(table)
