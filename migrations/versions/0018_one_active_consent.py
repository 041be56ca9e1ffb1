"""A person holds at most one active consent of a kind, by a partial unique index: two grants at once could
each find none and write one

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ACTIVE = sa.text("withdrawn_at IS NULL")


def upgrade():
    # Such twins are one consent given twice: the later one stands, the earlier ones end as it was given.
    op.execute(
        """
        UPDATE consents SET withdrawn_at = (
            SELECT min(later.granted_at) FROM consents AS later
            WHERE later.user_id = consents.user_id AND later.kind = consents.kind
            AND later.withdrawn_at IS NULL AND later.id > consents.id
        )
        WHERE withdrawn_at IS NULL AND EXISTS (
            SELECT 1 FROM consents AS later
            WHERE later.user_id = consents.user_id AND later.kind = consents.kind
            AND later.withdrawn_at IS NULL AND later.id > consents.id
        )
        """
    )
    op.create_index(
        "uq_consents_active",
        "consents",
        ["user_id", "kind"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade():
    op.drop_index("uq_consents_active", table_name="consents")
