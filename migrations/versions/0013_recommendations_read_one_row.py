"""Recommendations read one narrow row per candidate: which organizations serve a category in a community
(organization_reach), and each organization's record with its open load and a copy of its capacity and
dispatch weight (organization_records); triggers keep both exact

Ranking joined the organizations of a category with those of a community (thousands of index entries for
a few hundred candidates), then looked each candidate up in organizations and in organization_records and
counted its open orders: three lookups per candidate, over half the statement. Every organization now has
a record (made with it), and the open load moves with the orders that make it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# orders.recommend.LOAD_STATES: dispatched to an organization and not yet resolved.
LOAD = "('dispatched', 'in_progress', 'suspended', 'taken')"
RECORD_COLUMNS = (
    "organization_id, ratings, rating_sum, finished, finished_on_time, capacity, dispatch_weight, open_load"
)

BACKFILL = [
    "INSERT INTO organization_reach (community_id, category_code, organization_id) "
    "SELECT c.community_id, k.category_code, k.organization_id FROM organization_categories AS k "
    "JOIN organization_communities AS c ON c.organization_id = k.organization_id",
    f"INSERT INTO organization_records ({RECORD_COLUMNS}) "
    "SELECT id, 0, 0, 0, 0, capacity, dispatch_weight, 0 FROM organizations "
    "WHERE id NOT IN (SELECT organization_id FROM organization_records)",
    "UPDATE organization_records SET "
    "capacity = (SELECT capacity FROM organizations WHERE id = organization_id), "
    "dispatch_weight = (SELECT dispatch_weight FROM organizations WHERE id = organization_id), "
    "open_load = (SELECT count(*) FROM orders "
    f"WHERE orders.organization_id = organization_records.organization_id AND orders.state IN {LOAD})",
]

# The open load is changed at the commit, as the board's counts are (0009): the record stays locked for the
# commit alone, not for the rest of the transaction that moved the order.
POSTGRESQL = [
    f"""
    CREATE FUNCTION organization_records_count_load() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE organization_records AS records SET open_load = records.open_load + change.delta
        FROM (
            SELECT organization_id, sum(delta) AS delta FROM (VALUES
                (CASE WHEN TG_OP <> 'INSERT' AND OLD.state IN {LOAD} THEN OLD.organization_id END, -1),
                (CASE WHEN TG_OP <> 'DELETE' AND NEW.state IN {LOAD} THEN NEW.organization_id END, 1)
            ) AS moves (organization_id, delta)
            WHERE organization_id IS NOT NULL GROUP BY organization_id
        ) AS change
        WHERE records.organization_id = change.organization_id AND change.delta <> 0;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER orders_count_load_added AFTER INSERT ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.organization_id IS NOT NULL)
    EXECUTE FUNCTION organization_records_count_load()
    """,
    """
    CREATE CONSTRAINT TRIGGER orders_count_load_removed AFTER DELETE ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.organization_id IS NOT NULL)
    EXECUTE FUNCTION organization_records_count_load()
    """,
    """
    CREATE CONSTRAINT TRIGGER orders_count_load_changed AFTER UPDATE OF state, organization_id ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.organization_id IS DISTINCT FROM NEW.organization_id)
    EXECUTE FUNCTION organization_records_count_load()
    """,
    f"""
    CREATE FUNCTION organization_records_copy_organization() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO organization_records ({RECORD_COLUMNS})
        VALUES (NEW.id, 0, 0, 0, 0, NEW.capacity, NEW.dispatch_weight, 0)
        ON CONFLICT (organization_id) DO UPDATE
        SET capacity = EXCLUDED.capacity, dispatch_weight = EXCLUDED.dispatch_weight;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER organizations_copy_to_records AFTER INSERT OR UPDATE OF capacity, dispatch_weight
    ON organizations FOR EACH ROW EXECUTE FUNCTION organization_records_copy_organization()
    """,
    """
    CREATE FUNCTION organization_reach_follow_categories() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM organization_reach
            WHERE organization_id = OLD.organization_id AND category_code = OLD.category_code;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO organization_reach (community_id, category_code, organization_id)
            SELECT community_id, NEW.category_code, NEW.organization_id FROM organization_communities
            WHERE organization_id = NEW.organization_id
            ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER organization_categories_to_reach AFTER INSERT OR UPDATE OR DELETE
    ON organization_categories FOR EACH ROW EXECUTE FUNCTION organization_reach_follow_categories()
    """,
    """
    CREATE FUNCTION organization_reach_follow_communities() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM organization_reach
            WHERE organization_id = OLD.organization_id AND community_id = OLD.community_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO organization_reach (community_id, category_code, organization_id)
            SELECT NEW.community_id, category_code, NEW.organization_id FROM organization_categories
            WHERE organization_id = NEW.organization_id
            ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER organization_communities_to_reach AFTER INSERT OR UPDATE OR DELETE
    ON organization_communities FOR EACH ROW EXECUTE FUNCTION organization_reach_follow_communities()
    """,
]

# SQLite serializes writers: its triggers change the rows at once.
SQLITE = [
    f"""
    CREATE TRIGGER orders_count_load_added AFTER INSERT ON orders
    WHEN NEW.organization_id IS NOT NULL AND NEW.state IN {LOAD} BEGIN
        UPDATE organization_records SET open_load = open_load + 1 WHERE organization_id = NEW.organization_id;
    END
    """,
    f"""
    CREATE TRIGGER orders_count_load_removed AFTER DELETE ON orders
    WHEN OLD.organization_id IS NOT NULL AND OLD.state IN {LOAD} BEGIN
        UPDATE organization_records SET open_load = open_load - 1 WHERE organization_id = OLD.organization_id;
    END
    """,
    f"""
    CREATE TRIGGER orders_count_load_changed AFTER UPDATE OF state, organization_id ON orders
    WHEN OLD.state IS NOT NEW.state OR OLD.organization_id IS NOT NEW.organization_id BEGIN
        UPDATE organization_records SET open_load = open_load - 1
        WHERE organization_id = OLD.organization_id AND OLD.state IN {LOAD};
        UPDATE organization_records SET open_load = open_load + 1
        WHERE organization_id = NEW.organization_id AND NEW.state IN {LOAD};
    END
    """,
    f"""
    CREATE TRIGGER organizations_copy_to_records AFTER INSERT ON organizations BEGIN
        INSERT INTO organization_records ({RECORD_COLUMNS})
        VALUES (NEW.id, 0, 0, 0, 0, NEW.capacity, NEW.dispatch_weight, 0)
        ON CONFLICT (organization_id) DO UPDATE
        SET capacity = excluded.capacity, dispatch_weight = excluded.dispatch_weight;
    END
    """,
    """
    CREATE TRIGGER organizations_copy_changes_to_records AFTER UPDATE OF capacity, dispatch_weight
    ON organizations BEGIN
        UPDATE organization_records SET capacity = NEW.capacity, dispatch_weight = NEW.dispatch_weight
        WHERE organization_id = NEW.id;
    END
    """,
    """
    CREATE TRIGGER organization_categories_to_reach_added AFTER INSERT ON organization_categories BEGIN
        INSERT OR IGNORE INTO organization_reach (community_id, category_code, organization_id)
        SELECT community_id, NEW.category_code, NEW.organization_id FROM organization_communities
        WHERE organization_id = NEW.organization_id;
    END
    """,
    """
    CREATE TRIGGER organization_categories_to_reach_removed AFTER DELETE ON organization_categories BEGIN
        DELETE FROM organization_reach
        WHERE organization_id = OLD.organization_id AND category_code = OLD.category_code;
    END
    """,
    """
    CREATE TRIGGER organization_categories_to_reach_changed AFTER UPDATE ON organization_categories BEGIN
        DELETE FROM organization_reach
        WHERE organization_id = OLD.organization_id AND category_code = OLD.category_code;
        INSERT OR IGNORE INTO organization_reach (community_id, category_code, organization_id)
        SELECT community_id, NEW.category_code, NEW.organization_id FROM organization_communities
        WHERE organization_id = NEW.organization_id;
    END
    """,
    """
    CREATE TRIGGER organization_communities_to_reach_added AFTER INSERT ON organization_communities BEGIN
        INSERT OR IGNORE INTO organization_reach (community_id, category_code, organization_id)
        SELECT NEW.community_id, category_code, NEW.organization_id FROM organization_categories
        WHERE organization_id = NEW.organization_id;
    END
    """,
    """
    CREATE TRIGGER organization_communities_to_reach_removed AFTER DELETE ON organization_communities BEGIN
        DELETE FROM organization_reach
        WHERE organization_id = OLD.organization_id AND community_id = OLD.community_id;
    END
    """,
    """
    CREATE TRIGGER organization_communities_to_reach_changed AFTER UPDATE ON organization_communities BEGIN
        DELETE FROM organization_reach
        WHERE organization_id = OLD.organization_id AND community_id = OLD.community_id;
        INSERT OR IGNORE INTO organization_reach (community_id, category_code, organization_id)
        SELECT NEW.community_id, category_code, NEW.organization_id FROM organization_categories
        WHERE organization_id = NEW.organization_id;
    END
    """,
]

SQLITE_TRIGGERS = [
    "orders_count_load_added",
    "orders_count_load_removed",
    "orders_count_load_changed",
    "organizations_copy_to_records",
    "organizations_copy_changes_to_records",
    *(
        f"organization_{table}_to_reach_{change}"
        for table in ("categories", "communities")
        for change in ("added", "removed", "changed")
    ),
]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        "organization_reach",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "community_id", "category_code", "organization_id", name=op.f("pk_organization_reach")
        ),
    )
    with op.batch_alter_table("organization_records") as batch:
        batch.add_column(sa.Column("capacity", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("dispatch_weight", sa.Float(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("open_load", sa.Integer(), nullable=False, server_default="0"))
        # An organization's record is made with it: "not counted yet" until the first count.
        batch.alter_column("counted_at", existing_type=sa.DateTime(timezone=True), nullable=True)
    for statement in BACKFILL:
        op.execute(statement)
    if _postgresql():  # plans made before autovacuum gets to it see its real size
        op.execute("ANALYZE organization_reach")
    for statement in POSTGRESQL if _postgresql() else SQLITE:
        op.execute(statement)


def downgrade():
    if _postgresql():
        for trigger, table in [
            ("orders_count_load_added", "orders"),
            ("orders_count_load_removed", "orders"),
            ("orders_count_load_changed", "orders"),
            ("organizations_copy_to_records", "organizations"),
            ("organization_categories_to_reach", "organization_categories"),
            ("organization_communities_to_reach", "organization_communities"),
        ]:
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        for function in (
            "organization_records_count_load",
            "organization_records_copy_organization",
            "organization_reach_follow_categories",
            "organization_reach_follow_communities",
        ):
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {trigger}")
    op.execute("UPDATE organization_records SET counted_at = CURRENT_TIMESTAMP WHERE counted_at IS NULL")
    with op.batch_alter_table("organization_records") as batch:
        batch.alter_column("counted_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_column("open_load")
        batch.drop_column("dispatch_weight")
        batch.drop_column("capacity")
    op.drop_table("organization_reach")
