"""Orders lose what earlier steps left behind them, as the steps now do themselves: a pending extension
request on an order whose work has ended, the supervised flag with no 督办 open, a take time on an order
waiting to be taken again, and a returned order's running 签收 clock naming the organization that returned it
(its cards went there, not to the secretary)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "UPDATE orders SET extension_request = NULL "
        "WHERE extension_request IS NOT NULL AND state NOT IN ('taken', 'in_progress', 'suspended')"
    )
    op.execute(
        """
        UPDATE orders SET is_supervised = false
        WHERE is_supervised AND NOT EXISTS (
            SELECT 1 FROM supervisions
            WHERE supervisions.subject_type = 'order' AND supervisions.subject_id = orders.id
            AND supervisions.status = 'open'
        )
        """
    )
    op.execute(
        "UPDATE orders SET taken_at = NULL "
        "WHERE taken_at IS NOT NULL AND state IN ('submitted', 'accepted', 'dispatched', 'returned')"
    )
    # A deadline the organization had already missed stays its own (响应率), as a return now leaves it.
    op.execute(
        """
        UPDATE sla_clocks SET organization_id = NULL
        WHERE subject_type = 'order' AND name = 'accept' AND state <> 'stopped' AND overdue_at IS NULL
        AND organization_id IS NOT NULL
        AND subject_id IN (SELECT id FROM orders WHERE state = 'returned')
        """
    )


def downgrade():
    # What was removed was wrong; there is nothing to put back.
    pass
