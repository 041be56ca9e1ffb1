"""Orders lose ix_orders_organization_open: recommendations read the open load from organization_records
(0013), and nothing else looks orders up by it; every dispatch, take and finish wrote it for no reader

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# orders.models.LOAD_STATES_SQL when the index was made.
LOAD = sa.text("state IN ('in_progress', 'suspended', 'taken', 'dispatched')")


def upgrade():
    op.drop_index("ix_orders_organization_open", table_name="orders")


def downgrade():
    op.create_index(
        "ix_orders_organization_open", "orders", ["organization_id"], postgresql_where=LOAD, sqlite_where=LOAD
    )
