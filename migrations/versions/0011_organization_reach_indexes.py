"""Organizations by category and by community in indexes that also hold the organization

Recommendations join a category's organizations with a community's; with the organization in the index
both sides are index-only scans.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_organization_categories_category_organization",
        "organization_categories",
        ["category_code", "organization_id"],
    )
    op.drop_index("ix_organization_categories_category_code", table_name="organization_categories")
    op.create_index(
        "ix_organization_communities_community_organization",
        "organization_communities",
        ["community_id", "organization_id"],
    )
    op.drop_index("ix_organization_communities_community_id", table_name="organization_communities")


def downgrade():
    op.create_index("ix_organization_communities_community_id", "organization_communities", ["community_id"])
    op.drop_index("ix_organization_communities_community_organization", table_name="organization_communities")
    op.create_index("ix_organization_categories_category_code", "organization_categories", ["category_code"])
    op.drop_index("ix_organization_categories_category_organization", table_name="organization_categories")
