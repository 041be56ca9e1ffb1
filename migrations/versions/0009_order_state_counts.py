"""How many orders each community has in each state, kept by triggers on orders, for the dispatch board;
the likely-duplicate check reads ix_orders_resident, so ix_orders_open_duplicates goes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Deferred to the commit, so the two count rows a state change touches stay locked for the commit alone,
# not for the rest of the transaction that changed the order; changed by one statement in (community,
# state) order, so changes in opposite directions (one order suspended as another resumes) never deadlock.
POSTGRESQL = [
    """
    CREATE FUNCTION orders_count_states() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO order_state_counts (community_id, state, orders)
            VALUES (NEW.community_id, NEW.state, 1)
            ON CONFLICT (community_id, state) DO UPDATE SET orders = order_state_counts.orders + 1;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE order_state_counts SET orders = orders - 1
            WHERE community_id = OLD.community_id AND state = OLD.state;
        ELSE
            INSERT INTO order_state_counts (community_id, state, orders)
            SELECT community_id, state, sum(delta) FROM (
                VALUES (OLD.community_id, OLD.state, -1), (NEW.community_id, NEW.state, 1)
            ) AS change (community_id, state, delta)
            GROUP BY community_id, state
            ORDER BY community_id, state
            ON CONFLICT (community_id, state)
            DO UPDATE SET orders = order_state_counts.orders + EXCLUDED.orders;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER orders_count_states_added_or_removed AFTER INSERT OR DELETE ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION orders_count_states()
    """,
    """
    CREATE CONSTRAINT TRIGGER orders_count_states_changed AFTER UPDATE OF state, community_id ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.community_id IS DISTINCT FROM NEW.community_id)
    EXECUTE FUNCTION orders_count_states()
    """,
]

# SQLite serializes writers, so its triggers need no care about the order rows are changed in.
SQLITE = [
    """
    CREATE TRIGGER orders_count_states_added AFTER INSERT ON orders BEGIN
        INSERT INTO order_state_counts (community_id, state, orders) VALUES (NEW.community_id, NEW.state, 1)
        ON CONFLICT (community_id, state) DO UPDATE SET orders = orders + 1;
    END
    """,
    """
    CREATE TRIGGER orders_count_states_removed AFTER DELETE ON orders BEGIN
        UPDATE order_state_counts SET orders = orders - 1
        WHERE community_id = OLD.community_id AND state = OLD.state;
    END
    """,
    """
    CREATE TRIGGER orders_count_states_changed AFTER UPDATE OF state, community_id ON orders
    WHEN OLD.state IS NOT NEW.state OR OLD.community_id IS NOT NEW.community_id BEGIN
        UPDATE order_state_counts SET orders = orders - 1
        WHERE community_id = OLD.community_id AND state = OLD.state;
        INSERT INTO order_state_counts (community_id, state, orders) VALUES (NEW.community_id, NEW.state, 1)
        ON CONFLICT (community_id, state) DO UPDATE SET orders = orders + 1;
    END
    """,
]


def upgrade():
    op.drop_index("ix_orders_open_duplicates", table_name="orders")
    op.create_table(
        "order_state_counts",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", "state", name=op.f("pk_order_state_counts")),
    )
    op.execute(
        "INSERT INTO order_state_counts (community_id, state, orders) "
        "SELECT community_id, state, count(*) FROM orders GROUP BY community_id, state"
    )
    for statement in POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER orders_count_states_changed ON orders")
        op.execute("DROP TRIGGER orders_count_states_added_or_removed ON orders")
        op.execute("DROP FUNCTION orders_count_states()")
    else:
        for name in ("added", "removed", "changed"):
            op.execute(f"DROP TRIGGER orders_count_states_{name}")
    op.drop_table("order_state_counts")
    op.create_index("ix_orders_open_duplicates", "orders", ["resident_id", "category_id", "state"])
