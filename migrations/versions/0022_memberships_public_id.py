"""A role membership is addressed by an opaque public id (rm_…), as every other resource is: the API named
it by its sequential integer key (DELETE /memberships/<int>), which tells how many there are and guesses the
next

role_memberships.public_id is added, every row already there is given one of the form backend.db's
new_public_id makes, and the column then becomes required and unique.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# backend.db.new_public_id's form, copied rather than imported, so this migration keeps making what it made
# whatever the app becomes: the prefix, six letters of the second (from 2025-01-01 UTC), fourteen random.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ID_EPOCH = 1_735_689_600
_ID_SECONDS = 32**6


def _public_id(prefix: str) -> str:
    seconds = (int(time.time()) - _ID_EPOCH) % _ID_SECONDS
    stamp = "".join(_ALPHABET[(seconds >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0))
    return f"{prefix}_{stamp}" + "".join(_ALPHABET[b & 31] for b in secrets.token_bytes(14))


def upgrade():
    op.add_column("role_memberships", sa.Column("public_id", sa.String(length=24), nullable=True))
    bind = op.get_bind()
    ids = [row_id for (row_id,) in bind.execute(sa.text("SELECT id FROM role_memberships ORDER BY id"))]
    update = sa.text("UPDATE role_memberships SET public_id = :public_id WHERE id = :row_id")
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        bind.execute(update, [{"row_id": row_id, "public_id": _public_id("rm")} for row_id in chunk])
    # Required and unique: SQLite sets NOT NULL only by rebuilding the table (batch mode), which keeps its
    # other constraints and its index.
    with op.batch_alter_table("role_memberships") as batch:
        batch.alter_column("public_id", existing_type=sa.String(length=24), nullable=False)
        batch.create_unique_constraint(op.f("uq_role_memberships_public_id"), ["public_id"])


def downgrade():
    with op.batch_alter_table("role_memberships") as batch:
        batch.drop_constraint(op.f("uq_role_memberships_public_id"), type_="unique")
        batch.drop_column("public_id")
