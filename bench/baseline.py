"""The floor the API is measured against: bare Flask and SQLAlchemy Core, no schema library, no auth.

Served by gunicorn exactly like the API (``bench.baseline:create_app()``), on the same PostgreSQL database,
so a ratio against it says what the API's own layers cost, not what Python, WSGI or PostgreSQL cost.
"""

import os

import sqlalchemy as sa
from flask import Flask, jsonify, request

PAGE_SIZE = 20
SEED_ROWS = 10_000

metadata = sa.MetaData()
bench_rows = sa.Table(
    "bench_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # serial; its primary-key index serves the keyset
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def create_and_seed(engine: sa.Engine, rows: int = SEED_ROWS) -> None:
    """(Re)create bench_rows holding `rows` rows, analysed so the planner picks the index."""
    with engine.begin() as conn:
        bench_rows.drop(conn, checkfirst=True)
        bench_rows.create(conn)
        conn.execute(
            sa.text(
                "INSERT INTO bench_rows (name, value) "
                "SELECT 'row-' || n, n FROM generate_series(1, :rows) AS n"
            ),
            {"rows": rows},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE bench_rows"))


def create_app(database_url: str | None = None) -> Flask:
    app = Flask(__name__)
    # A sync worker serves one request at a time, so a small pool is all it ever uses.
    engine = sa.create_engine(database_url or os.environ["DATABASE_URL"], pool_size=2, max_overflow=2)

    @app.get("/hello")
    def hello():
        return jsonify(hello="world")

    @app.post("/rows")
    def insert_row():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="body must be a JSON object"), 400
        name, value = body.get("name"), body.get("value")
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            return jsonify(error="name must be a string of 1 to 200 characters"), 400
        # bool is an int subclass; JSON true is not a value.
        if not isinstance(value, int) or isinstance(value, bool):
            return jsonify(error="value must be an integer"), 400
        with engine.begin() as conn:
            new_id = conn.execute(
                bench_rows.insert().values(name=name, value=value).returning(bench_rows.c.id)
            ).scalar_one()
        return jsonify(id=new_id), 201

    @app.get("/rows")
    def list_rows():
        after = request.args.get("after", "0")
        if not after.isdigit():
            return jsonify(error="after must be a non-negative integer"), 400
        query = (
            sa.select(bench_rows)
            .where(bench_rows.c.id > int(after))
            .order_by(bench_rows.c.id)
            .limit(PAGE_SIZE)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        items = [
            {"id": r.id, "name": r.name, "value": r.value, "created_at": r.created_at.isoformat()}
            for r in rows
        ]
        return jsonify(items=items, next_after=items[-1]["id"] if items else None)

    return app
