"""Fewer index writes when an order is placed: no unique index on the order number, the indexes by
organization leave out orders without one, and an Idempotency-Key's record is found by its primary key

Placing an order wrote fifteen index entries; it now writes eleven. The number is the day and the id, so
unique by construction. Every new order has no organization yet, and nothing looks orders up by a missing
one. The key's record had a surrogate id that nothing read beside the unique (user, endpoint, key).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

HAS_ORGANIZATION = sa.text("organization_id IS NOT NULL")
BY_ORGANIZATION = {
    "ix_orders_organization_state": ["organization_id", "state", "id"],
    "ix_orders_grid_recent": ["grid_id", "created_at", "organization_id"],
}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _recreate_sqlite_count_triggers() -> None:
    """SQLite drops a table's triggers with the table it rebuilds: the ones 0009 made, again."""
    for statement in context.script.get_revision("0009").module.SQLITE:
        op.execute(statement)


def upgrade():
    for name in BY_ORGANIZATION:
        op.drop_index(name, table_name="orders")
    # SQLite cannot drop a constraint: the table is rebuilt (foreign keys are off while migrating, env.py).
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint("uq_orders_number", type_="unique")
    if _sqlite():
        _recreate_sqlite_count_triggers()
    for name, columns in BY_ORGANIZATION.items():
        op.create_index(
            name, "orders", columns, postgresql_where=HAS_ORGANIZATION, sqlite_where=HAS_ORGANIZATION
        )

    if _sqlite():
        with op.batch_alter_table("idempotent_requests", recreate="always") as batch:
            batch.drop_index("uq_idempotent_requests_user_key")
            batch.drop_constraint("pk_idempotent_requests", type_="primary")
            batch.drop_column("id")
            batch.create_primary_key("pk_idempotent_requests", ["user_id", "endpoint", "key"])
    else:
        op.drop_constraint("pk_idempotent_requests", "idempotent_requests", type_="primary")
        op.drop_column("idempotent_requests", "id")
        # The unique index that was there becomes the primary key, without building another.
        op.execute(
            "ALTER TABLE idempotent_requests ADD CONSTRAINT pk_idempotent_requests "
            "PRIMARY KEY USING INDEX uq_idempotent_requests_user_key"
        )


def downgrade():
    if _sqlite():
        with op.batch_alter_table("idempotent_requests", recreate="always") as batch:
            batch.drop_constraint("pk_idempotent_requests", type_="primary")
            batch.add_column(sa.Column("id", sa.Integer(), nullable=True))
        op.execute("UPDATE idempotent_requests SET id = rowid")
        with op.batch_alter_table("idempotent_requests", recreate="always") as batch:
            batch.alter_column("id", nullable=False)
            batch.create_primary_key("pk_idempotent_requests", ["id"])
    else:
        op.drop_constraint("pk_idempotent_requests", "idempotent_requests", type_="primary")
        op.add_column("idempotent_requests", sa.Column("id", sa.Integer(), sa.Identity(), nullable=False))
        op.create_primary_key("pk_idempotent_requests", "idempotent_requests", ["id"])
    op.create_index(
        "uq_idempotent_requests_user_key", "idempotent_requests", ["user_id", "endpoint", "key"], unique=True
    )

    for name in BY_ORGANIZATION:
        op.drop_index(name, table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.create_unique_constraint("uq_orders_number", ["number"])
    if _sqlite():
        _recreate_sqlite_count_triggers()
    for name, columns in BY_ORGANIZATION.items():
        op.create_index(name, "orders", columns)
