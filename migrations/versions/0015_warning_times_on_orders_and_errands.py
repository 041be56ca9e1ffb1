"""Orders and errands show when their running clock's warning (黄牌预警) comes, beside its deadline, so a
board colours a near deadline yellow by the clock's own rule rather than a copy of it

Orders and errands with a running clock take its warning time; the rest have none.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The clock a subject shows is the running one whose deadline it shows (orders.service, errands.service).
BACKFILL = """
UPDATE {table} SET warn_at = (
    SELECT max(sla_clocks.warn_at) FROM sla_clocks
    WHERE sla_clocks.subject_type = '{subject}' AND sla_clocks.subject_id = {table}.id
    AND sla_clocks.state = 'running' AND sla_clocks.due_at = {table}.due_at
)
WHERE id IN (
    SELECT subject_id FROM sla_clocks
    WHERE subject_type = '{subject}' AND state = 'running' AND due_at IS NOT NULL
)
"""
SUBJECTS = {"orders": "order", "errands": "errand"}


def upgrade():
    # A plain ADD COLUMN on SQLite too: no table is rebuilt, so the triggers on orders stay.
    for table, subject in SUBJECTS.items():
        op.add_column(table, sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True))
        op.execute(BACKFILL.format(table=table, subject=subject))


def downgrade():
    for table in SUBJECTS:
        op.drop_column(table, "warn_at")
