"""An errand's step owned by the resident (居民确认) no longer escalates: its running clocks stop warning
staff and raising 督办; run out, the step completes the errand (errands.service._on_overdue)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def _residents_clocks() -> list[int]:
    """The open clocks of errand steps their type's version gives to the resident."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.id, c.name, v.definition FROM sla_clocks c "
            "JOIN errands e ON e.id = c.subject_id "
            "JOIN errand_type_versions v ON v.id = e.type_version_id "
            "WHERE c.subject_type = 'errand' AND c.state IN ('running', 'paused') AND c.escalates"
        )
    )
    found = []
    for clock_id, name, definition in rows:
        if isinstance(definition, str):  # SQLite hands JSON back as its text
            definition = json.loads(definition)
        steps = definition.get("steps", [])
        if any(s.get("state") == name and s.get("owner") == "resident" for s in steps):
            found.append(clock_id)
    return found


def upgrade():
    ids = _residents_clocks()
    if ids:
        op.get_bind().execute(
            sa.text("UPDATE sla_clocks SET escalates = false WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        )


def downgrade():
    # Which clocks escalated before is not kept; the residents' steps escalate again, as before 0021.
    op.execute(
        "UPDATE sla_clocks SET escalates = true "
        "WHERE subject_type = 'errand' AND name = 'returned_to_resident'"
    )
