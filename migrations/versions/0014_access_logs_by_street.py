"""Each full read of a sensitive value records the street whose data it was, so a street admin audits
their own street's reads and no other's

Reads logged before this revision take the street from what they read: an errand's community, or the
street the person lives in.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BACKFILL = [
    """
    UPDATE sensitive_access_logs SET street_id = (
        SELECT communities.street_id FROM errands JOIN communities ON communities.id = errands.community_id
        WHERE 'errand:' || errands.public_id = sensitive_access_logs.resource
    )
    WHERE resource LIKE 'errand:%'
    """,
    """
    UPDATE sensitive_access_logs SET street_id = (
        SELECT min(communities.street_id) FROM role_memberships
        LEFT JOIN grids ON role_memberships.scope_type = 'grid' AND grids.id = role_memberships.scope_id
        JOIN communities ON communities.id = CASE role_memberships.scope_type
            WHEN 'grid' THEN grids.community_id WHEN 'community' THEN role_memberships.scope_id END
        WHERE role_memberships.user_id = sensitive_access_logs.subject_user_id
        AND role_memberships.role = 'resident'
    )
    WHERE street_id IS NULL
    """,
]


def upgrade():
    with op.batch_alter_table("sensitive_access_logs") as batch:
        batch.add_column(sa.Column("street_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_sensitive_access_logs_street_id_streets"), "streets", ["street_id"], ["id"]
        )
        batch.create_index("ix_sensitive_access_logs_street", ["street_id", "id"], unique=False)
    for statement in BACKFILL:
        op.execute(statement)


def downgrade():
    with op.batch_alter_table("sensitive_access_logs") as batch:
        batch.drop_index("ix_sensitive_access_logs_street")
        batch.drop_constraint(op.f("fk_sensitive_access_logs_street_id_streets"), type_="foreignkey")
        batch.drop_column("street_id")
