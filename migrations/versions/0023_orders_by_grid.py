"""A grid's orders are found by their own index: a grid worker's list (GET /grids/<id>/orders, newest
first) read the whole table's newest ids and kept the grid's, all of it for a quiet grid or a rare state

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_orders_grid", "orders", ["grid_id", "id"])


def downgrade():
    op.drop_index("ix_orders_grid", table_name="orders")
