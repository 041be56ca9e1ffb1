"""Service hours as data: the periods of every working day that working-day limits count (none: the
default 09:00–12:00 and 13:30–17:30)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "service_periods",
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.PrimaryKeyConstraint("start", name=op.f("pk_service_periods")),
    )


def downgrade():
    op.drop_table("service_periods")
