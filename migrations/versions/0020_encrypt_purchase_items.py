"""A purchase's drug list (代购药品清单) is encrypted at rest: it tells a person's illnesses, health
information like an errand's diagnosis

errands.items was clear JSON. It becomes the Fernet ciphertext of the list's JSON text (EncryptedJSON), null
where there is no list; every list already there is encrypted under the app's current key.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

import json

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, MultiFernet
from flask import current_app

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

CLEAR = sa.table("errands", sa.column("id", sa.Integer), sa.column("items", sa.JSON))
ENCRYPTED = sa.table("errands", sa.column("id", sa.Integer), sa.column("items", sa.Text))


def _fernet() -> MultiFernet:
    """The app's keys (SANDAN_ENCRYPTION_KEYS, which create_app configures backend.privacy.crypto with): the
    first encrypts and every one decrypts, as there, so the app reads these rows and rotate-keys rewrites
    them. Built here rather than imported, so this migration keeps doing what it did whatever the app
    becomes."""
    keys = [key.strip() for key in current_app.config["ENCRYPTION_KEYS"].split(",") if key.strip()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _move(rows, convert) -> None:
    """Write each (id, value) row's ``convert(value)`` in the new column (``items_new``), in batches."""
    update = sa.text("UPDATE errands SET items_new = :value WHERE id = :row_id")
    batch = []
    for row_id, value in rows:
        converted = convert(value)
        if converted is not None:
            batch.append({"row_id": row_id, "value": converted})
        if len(batch) == 500:
            op.get_bind().execute(update, batch)
            batch = []
    if batch:
        op.get_bind().execute(update, batch)


def upgrade():
    fernet = _fernet()

    def encrypt(items) -> str | None:
        # An empty list is stored as nothing, as the app now stores it.
        return fernet.encrypt(json.dumps(items, ensure_ascii=False).encode()).decode() if items else None

    op.add_column("errands", sa.Column("items_new", sa.Text(), nullable=True))
    items = CLEAR.c["items"]
    _move(op.get_bind().execute(sa.select(CLEAR.c.id, items).where(items.is_not(None))).all(), encrypt)
    # Plain ALTER TABLE on SQLite too (3.35+): the table is not rebuilt, its partial index stays as it is.
    op.drop_column("errands", "items")
    op.alter_column("errands", "items_new", new_column_name="items", existing_type=sa.Text())


def downgrade():
    fernet = _fernet()

    def decrypt(token: str | None) -> str:
        items = [] if token is None else json.loads(fernet.decrypt(token.encode()))
        return json.dumps(items, ensure_ascii=False)

    op.add_column("errands", sa.Column("items_new", sa.JSON(), nullable=True))
    _move(op.get_bind().execute(sa.select(ENCRYPTED.c.id, ENCRYPTED.c["items"])).all(), decrypt)
    # The clear column was NOT NULL: SQLite sets that only by rebuilding the table.
    with op.batch_alter_table("errands") as batch:
        batch.drop_column("items")
        batch.alter_column("items_new", new_column_name="items", nullable=False, existing_type=sa.JSON())
