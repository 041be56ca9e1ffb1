"""Realistic order data at scale, loaded straight into PostgreSQL with COPY, and grown in steps.

One street of ``communities`` communities and their grids, the shipped catalog, ``organizations`` social
organizations (each serving a few categories in a few communities), ``residents`` residents, and orders
placed at a steady ``orders_per_day``: growing from 10,000 to 1,000,000 orders adds *history* (older
orders, almost all closed), the way a street's table grows over the years, while the recent weeks (the
open orders, the dispatch board) look alike at every size. Ids follow time: the newest order gets the
highest id, so the first step takes the top of the id range and later steps fill in below it.

Every order has its place event and the event of its last step, an offer when it was ever dispatched, SLA
clocks (acceptance once accepted, completion once taken; running, paused or stopped as its state says),
and a rating for most closed ones. Encrypted columns hold real Fernet tokens made with the bench's key:
a few distinct values, encrypted once and reused.
"""

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from cryptography.fernet import Fernet

from backend.catalog.service import shipped_catalog
from backend.db import new_public_id
from backend.orders.models import LOAD_STATES_SQL, NO_DEADLINE, URGENCY_RANK
from backend.orders.recommend import HISTORY as RECORD_WINDOW
from backend.pagination import encode_parts

# Which open state an order still open is in (weights).
OPEN_WEIGHTS = {
    "submitted": 8,
    "accepted": 6,
    "dispatched": 12,
    "returned": 3,
    "taken": 12,
    "in_progress": 35,
    "suspended": 6,
    "resolved": 18,
}
FINAL_WEIGHTS = {"closed": 88, "cancelled": 7, "rejected": 5}
CATEGORY_WEIGHTS = {
    "emergency_help": 3,
    "urgent_repair": 6,
    "home_repair": 20,
    "cleaning": 12,
    "elderly_care": 15,
    "companionship": 10,
    "disability_support": 5,
    "child_care": 6,
    "legal_advice": 6,
    "counselling": 5,
    "mediation": 6,
    "health_check": 6,
}
RATING_WEIGHTS = {5: 50, 4: 30, 3: 12, 2: 5, 1: 3}
# How long the limits run (approximately: working days as calendar days times 7/5).
ACCEPT_LIMIT = {"urgent": timedelta(minutes=30), "other": timedelta(days=1.4)}
COMPLETE_LIMIT = {
    "urgent": timedelta(hours=24),
    "daily": timedelta(days=7),
    "targeted": timedelta(days=4.2),
    "professional": timedelta(days=21),
}
LIMIT_COLUMNS = {  # (amount, unit) as the clock rows store them
    ("accept", "urgent"): ("0.5", "hours"),
    ("accept", "other"): ("1", "working_days"),
    ("complete", "urgent"): ("24", "hours"),
    ("complete", "daily"): ("5", "working_days"),
    ("complete", "targeted"): ("3", "working_days"),
    ("complete", "professional"): ("15", "working_days"),
}
# Orders older than this are finished (closed, cancelled or rejected); younger ones may still be open.
OPEN_WINDOW_DAYS = 15.0
POOL_CATEGORY = "companionship"
BENCH_OPENID = "bench-{role}-{n}"

# Contact details: a few real ciphertexts reused, as the bench may not spend minutes encrypting.
ADDRESSES = [
    f"幸福街道{b}号楼{u}单元{r}室" for b, u, r in ((3, 2, 501), (7, 1, 302), (12, 3, 1101), (1, 1, 101))
]
PHONES = ["13812348000", "13900001111", "15011112222", "18622223333"]
NAMES = ["王秀英", "李建国", "张桂兰", "刘志强", "陈玉梅", "杨德明"]


@dataclass(frozen=True)
class Shape:
    """How big the world is; orders are grown separately, up to ``final_orders``."""

    communities: int = 12
    grids_per_community: int = 10
    organizations: int = 10_000
    residents: int = 100_000
    orders_per_day: int = 500
    final_orders: int = 1_000_000
    # Organizations that all serve POOL_CATEGORY in the last community, each with a signed-in admin:
    # the contenders of the take-under-contention row.
    contenders: int = 8


@dataclass
class World:
    """What later steps need to know of what was loaded (database ids)."""

    shape: Shape
    now: datetime
    street_id: int = 0
    community_ids: list[int] = field(default_factory=list)
    grid_community: dict[int, int] = field(default_factory=dict)
    categories: dict[str, dict] = field(default_factory=dict)  # code -> {id, kind, answers}
    candidates: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # (code, community) -> orgs
    organization_ids: list[int] = field(default_factory=list)
    contender_org_ids: list[int] = field(default_factory=list)
    resident_ids: list[int] = field(default_factory=list)
    resident_grid: list[int] = field(default_factory=list)
    resident_first_id: int = 0
    secretary_ids: dict[int, int] = field(default_factory=dict)  # community -> user
    orders: int = 0  # orders loaded so far (the newest ones)
    token_addresses: list[str] = field(default_factory=list)
    token_phones: list[str] = field(default_factory=list)


# Pure helpers (unit-tested)


def public_id(prefix: str) -> str:
    """A public id made the way the app makes them (backend.db.new_public_id)."""
    return new_public_id(prefix)


# What backend.db.new_public_id puts first (the second it was made, six letters), for a generated order's
# creation time ``created``: its ids lie in the public-id index the way the app's own would. (%% for the
# modulo: the statement runs with parameters.)
PUBLIC_ID_STAMP_SQL = (
    "(SELECT string_agg(substr('0123456789abcdefghjkmnpqrstvwxyz', "
    "(((((extract(epoch FROM created)::bigint - 1735689600) %% 1073741824) + 1073741824) %% 1073741824) "
    ">> shift & 31)::int + 1, 1), '' ORDER BY shift DESC) FROM unnest(ARRAY[25, 20, 15, 10, 5, 0]) AS shift)"
)


def order_id_for(rank: int, final_orders: int) -> int:
    """The id of the ``rank``-th newest order (0 = newest) when ``final_orders`` will be loaded in all."""
    if not 0 <= rank < final_orders:
        raise ValueError(f"rank {rank} outside 0..{final_orders - 1}")
    return final_orders - rank


def copy_value(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def copy_line(values: Iterable) -> str:
    return "\t".join(map(copy_value, values)) + "\n"


def encode_board_cursor(urgency_rank: int, due_at: datetime, order_id: int) -> str:
    """The dispatch board's keyset cursor, as orders.views encodes it, for a row far into the board."""
    return encode_parts([urgency_rank, due_at.astimezone(UTC).isoformat(), order_id])


def answers_for(questions: list[dict]) -> dict:
    """Answers that pass the category's required questions."""
    answers: dict = {}
    for q in questions:
        if not q.get("required"):
            continue
        kind, choices = q.get("datatype"), q.get("choices") or []
        if kind == "single_choice":
            answers[q["code"]] = choices[0]["key"]
        elif kind == "multi_choice":
            answers[q["code"]] = [choices[0]["key"]]
        elif kind == "number":
            answers[q["code"]] = 2
        else:
            answers[q["code"]] = "需要上门协助"
    return answers


# Loading


def _copy(conn: psycopg.Connection, table: str, columns: list[str], lines: Iterable[str]) -> int:
    count, chunk = 0, []
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for line in lines:
            chunk.append(line)
            count += 1
            if len(chunk) >= 5000:
                copy.write("".join(chunk))
                chunk = []
        if chunk:
            copy.write("".join(chunk))
    return count


def _ids(conn: psycopg.Connection, sql: str, params=()) -> list[int]:
    return [r[0] for r in conn.execute(sql, params)]


def seed_world(conn: psycopg.Connection, shape: Shape, fernet_key: str, seed: int = 7) -> World:
    """Street, communities, grids, catalog, organizations and residents (no orders yet); commits."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    world = World(shape=shape, now=now)
    fernet = Fernet(fernet_key.encode())
    world.token_addresses = [fernet.encrypt(a.encode()).decode() for a in ADDRESSES]
    world.token_phones = [fernet.encrypt(p.encode()).decode() for p in PHONES]
    since = now - timedelta(days=3650)

    world.street_id = conn.execute(
        "INSERT INTO streets (name, public_id, created_at) VALUES (%s, %s, %s) RETURNING id",
        ("幸福街道", public_id("st"), since),
    ).fetchone()[0]
    for c in range(shape.communities):
        cid = conn.execute(
            "INSERT INTO communities (street_id, name, public_id, created_at) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            (world.street_id, f"第{c + 1}社区", public_id("cm"), since),
        ).fetchone()[0]
        world.community_ids.append(cid)
        for g in range(shape.grids_per_community):
            gid = conn.execute(
                "INSERT INTO grids (community_id, name, public_id, created_at) VALUES (%s, %s, %s, %s) "
                "RETURNING id",
                (cid, f"第{g + 1}网格", public_id("gd"), since),
            ).fetchone()[0]
            world.grid_community[gid] = cid

    # `sandan migrate` loads the shipped catalog into an empty one; what it did not load is added here.
    loaded = dict(conn.execute("SELECT code, id FROM service_categories").fetchall())
    for n, entry in enumerate(shipped_catalog()):
        cat_id = (
            loaded.get(entry["code"])
            or conn.execute(
                "INSERT INTO service_categories (code, name, service_kind, description, questions, "
                "enabled, sort_order, public_id, created_at) "
                "VALUES (%s, %s, %s, %s, %s, true, %s, %s, %s) RETURNING id",
                (
                    entry["code"],
                    entry["name"],
                    entry["service_kind"],
                    entry.get("description", ""),
                    json.dumps(entry.get("questions", []), ensure_ascii=False),
                    entry.get("sort_order", n * 10),
                    public_id("sc"),
                    since,
                ),
            ).fetchone()[0]
        )
        world.categories[entry["code"]] = {
            "id": cat_id,
            "kind": entry["service_kind"],
            "name": entry["name"],
            "answers": json.dumps(answers_for(entry.get("questions", [])), ensure_ascii=False),
        }

    _seed_organizations(conn, world, rng, since)
    _seed_people(conn, world, rng, since)
    conn.commit()
    return world


def _seed_organizations(conn, world: World, rng: random.Random, since: datetime) -> None:
    shape, codes = world.shape, list(world.categories)
    org_lines, cat_lines, comm_lines = [], [], []
    # The contenders work in the last community: their pooled orders stay off the first one's board.
    pool_community = world.community_ids[-1]
    plans = []
    for n in range(shape.organizations):
        if n < shape.contenders:
            cats, comms = {POOL_CATEGORY, rng.choice(codes)}, {pool_community}
        else:
            cats = set(rng.sample(codes, rng.randint(2, 4)))
            # Neighbouring communities: an organization works where it is based and next door.
            base = rng.randrange(len(world.community_ids))
            comms = {
                world.community_ids[(base + k) % len(world.community_ids)] for k in range(rng.randint(1, 3))
            }
        plans.append((cats, comms))
        weight = 1.0 if rng.random() < 0.9 else rng.choice([0.9, 0.8, 0.7, 0.6])
        org_lines.append(
            copy_line(
                [
                    world.street_id,
                    f"第{n + 1}号志愿服务队",
                    "",
                    rng.randint(5, 30),
                    public_id("og"),
                    since,
                    weight,
                ]
            )
        )
    _copy(
        conn,
        "organizations",
        ["street_id", "name", "description", "capacity", "public_id", "created_at", "dispatch_weight"],
        org_lines,
    )
    world.organization_ids = _ids(conn, "SELECT id FROM organizations ORDER BY id")
    world.contender_org_ids = world.organization_ids[: shape.contenders]
    for org_id, (cats, comms) in zip(world.organization_ids, plans, strict=True):
        cat_lines += [copy_line([org_id, c]) for c in sorted(cats)]
        comm_lines += [copy_line([org_id, c]) for c in sorted(comms)]
        for code in cats:
            for comm in comms:
                world.candidates.setdefault((code, comm), []).append(org_id)
    _copy(conn, "organization_categories", ["organization_id", "category_code"], cat_lines)
    _copy(conn, "organization_communities", ["organization_id", "community_id"], comm_lines)


def _seed_people(conn, world: World, rng: random.Random, since: datetime) -> None:
    shape = world.shape
    grids = list(world.grid_community)
    columns = ["openid", "nickname", "real_name", "is_active", "public_id", "created_at"]

    def user(role: str, n: int) -> str:
        return copy_line([BENCH_OPENID.format(role=role, n=n), f"{role}{n}", "", True, public_id("u"), since])

    lines = [user("resident", n) for n in range(shape.residents)]
    lines += [user("secretary", n) for n in range(len(world.community_ids))]
    lines += [user("org-admin", n) for n in range(shape.contenders)]
    _copy(conn, "users", columns, lines)
    by_openid = dict(conn.execute("SELECT openid, id FROM users WHERE openid LIKE 'bench-%%'"))
    members = []
    for n in range(shape.residents):
        uid, grid = by_openid[BENCH_OPENID.format(role="resident", n=n)], grids[n % len(grids)]
        world.resident_ids.append(uid)
        world.resident_grid.append(grid)
        members.append(copy_line([uid, "resident", "grid", grid, public_id("rm"), since]))
    for n, cid in enumerate(world.community_ids):
        uid = by_openid[BENCH_OPENID.format(role="secretary", n=n)]
        world.secretary_ids[cid] = uid
        members.append(copy_line([uid, "secretary", "community", cid, public_id("rm"), since]))
    for n, org_id in enumerate(world.contender_org_ids):
        uid = by_openid[BENCH_OPENID.format(role="org-admin", n=n)]
        members.append(copy_line([uid, "org_admin", "organization", org_id, public_id("rm"), since]))
    columns = ["user_id", "role", "scope_type", "scope_id", "public_id", "created_at"]
    _copy(conn, "role_memberships", columns, members)
    # The generating SQL finds resident n at resident_first_id + n.
    world.resident_first_id = world.resident_ids[0]
    if world.resident_ids[-1] - world.resident_ids[0] != len(world.resident_ids) - 1:
        raise RuntimeError("resident ids are not contiguous")


ORDER_COLUMNS = [
    "id", "number", "resident_id", "category_id", "service_kind", "urgency_rank", "community_id", "grid_id",
    "description", "answers", "address", "contact_name", "contact_phone", "state", "organization_id", "pool",
    "due_at", "is_overdue", "is_supervised", "return_count", "reopen_count", "dispatch_count",
    "extension_request", "extension_granted", "resolution_note", "accepted_at", "dispatched_at", "taken_at",
    "resolved_at", "closed_at", "updated_at", "version", "public_id", "created_at",
]  # fmt: skip
EVENT_COLUMNS = [
    "order_id",
    "at",
    "actor_id",
    "actor_role",
    "action",
    "from_state",
    "to_state",
    "note",
    "data",
]
OFFER_COLUMNS = ["order_id", "organization_id", "offered_at", "active"]
RATING_COLUMNS = ["order_id", "organization_id", "community_id", "level", "tags", "comment", "created_at"]
CLOCK_COLUMNS = [
    "subject_type", "subject_id", "name", "community_id", "organization_id", "amount", "unit", "escalates",
    "state", "started_at", "pauses", "due_at", "warn_at", "assumed_years", "warned_at", "overdue_at",
    "stopped_at", "stop_reason", "on_time", "generation", "created_at",
]  # fmt: skip
# The step that led into each state: (action, actor role, state before).
LAST_STEP = {
    "accepted": ("accept", "secretary", "submitted"),
    "dispatched": ("dispatch", "secretary", "accepted"),
    "returned": ("return", "org_admin", "dispatched"),
    "taken": ("take", "org_admin", "dispatched"),
    "in_progress": ("start", "org_admin", "taken"),
    "suspended": ("suspend", "org_admin", "in_progress"),
    "resolved": ("resolve", "org_admin", "in_progress"),
    "closed": ("confirm", "owner", "resolved"),
    "cancelled": ("cancel", "owner", "submitted"),
    "rejected": ("reject", "secretary", "submitted"),
}


class _Batch:
    def __init__(self):
        self.orders: list[str] = []
        self.events: list[str] = []
        self.offers: list[str] = []
        self.ratings: list[str] = []
        self.clocks: list[str] = []


def _clock(batch, world, order_id, name, kind_key, community, org, started, due, stopped, state):
    amount, unit = LIMIT_COLUMNS[(name, kind_key)]
    on_time = None if stopped is None else stopped <= due
    overdue = due if (due is not None and due < (stopped or world.now)) else None
    warn = None if due is None else due - (due - started) / 5
    warned = warn if (warn is not None and warn < (stopped or world.now)) else None
    batch.clocks.append(
        copy_line(
            [
                "order",
                order_id,
                name,
                community,
                org,
                amount,
                unit,
                True,
                state,
                started,
                "[]",
                None if state == "paused" else due,
                None if state == "paused" else warn,
                "[]",
                warned,
                overdue,
                stopped,
                None if stopped is None else "met",
                on_time,
                1,
                started,
            ]
        )
    )


def _cumulative(weights: dict) -> list[tuple[object, float]]:
    """(key, upper bound in 0..1) for picking a key with ``random() < bound``, in the weights' order."""
    total, out, acc = sum(weights.values()), [], 0
    for key, weight in weights.items():
        acc += weight
        out.append((key, acc / total))
    return out


def pick_sql(weights: dict, draw: str) -> str:
    """A SQL CASE choosing a key of ``weights`` with the uniform 0..1 value ``draw``."""
    cum = _cumulative(weights)
    whens = " ".join(f"WHEN {draw} < {bound!r} THEN {_sql_literal(key)}" for key, bound in cum[:-1])
    return f"CASE {whens} ELSE {_sql_literal(cum[-1][0])} END"


def _sql_literal(value) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def _helper_tables(conn: psycopg.Connection, world: World) -> None:
    """Lookup tables the generating SQL joins: grids by index, category slots, candidates by index."""
    conn.execute("DROP TABLE IF EXISTS bench_scale_grids, bench_scale_categories, bench_scale_candidates")
    conn.execute(
        "CREATE UNLOGGED TABLE bench_scale_grids (idx int PRIMARY KEY, grid_id int, community_id int)"
    )
    grids = list(world.grid_community.items())
    conn.cursor().executemany(
        "INSERT INTO bench_scale_grids VALUES (%s, %s, %s)", [(i, g, c) for i, (g, c) in enumerate(grids)]
    )
    conn.execute(
        "CREATE UNLOGGED TABLE bench_scale_categories (code text PRIMARY KEY, category_id int, kind text, "
        "urgency smallint, name text, answers text)"
    )
    conn.cursor().executemany(
        "INSERT INTO bench_scale_categories VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (c, v["id"], v["kind"], URGENCY_RANK[v["kind"]], v["name"], v["answers"])
            for c, v in world.categories.items()
        ],
    )
    conn.execute(
        "CREATE UNLOGGED TABLE bench_scale_candidates (category_id int, community_id int, idx int, n int, "
        "organization_id int, PRIMARY KEY (category_id, community_id, idx))"
    )
    rows = []
    for (code, community), orgs in world.candidates.items():
        rows += [(world.categories[code]["id"], community, i, len(orgs), o) for i, o in enumerate(orgs)]
    with conn.cursor().copy("COPY bench_scale_candidates FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute("ANALYZE bench_scale_grids, bench_scale_categories, bench_scale_candidates")


def _orders_sql(world: World) -> str:
    """INSERT the orders of ranks [%(lo)s, %(hi)s): ids, states, times and deadlines by age."""
    shape = world.shape
    cats = {c: CATEGORY_WEIGHTS.get(c, 5) for c in world.categories}
    open_state = pick_sql(OPEN_WEIGHTS, "r_state")
    final_state = pick_sql(FINAL_WEIGHTS, "r_state")
    limit = {k: f"interval '{v.total_seconds():.0f} seconds'" for k, v in COMPLETE_LIMIT.items()}
    accept_other = f"interval '{ACCEPT_LIMIT['other'].total_seconds():.0f} seconds'"
    accept_urgent = f"interval '{ACCEPT_LIMIT['urgent'].total_seconds():.0f} seconds'"
    addresses = "ARRAY[" + ", ".join(_sql_literal(t) for t in world.token_addresses) + "]"
    phones = "ARRAY[" + ", ".join(_sql_literal(t) for t in world.token_phones) + "]"
    names = "ARRAY[" + ", ".join(_sql_literal(n) for n in NAMES) + "]"
    columns = ", ".join(ORDER_COLUMNS)
    return f"""
    INSERT INTO orders ({columns})
    WITH base AS (
      SELECT r AS rank, {shape.final_orders} - r AS id, (r + random()) / {shape.orders_per_day}.0 AS age,
             floor(random() * {len(world.resident_ids)})::int AS n, random() AS r_cat, random() AS r_open,
             random() AS r_state, random() AS r_org, random() AS r_pool, random() AS r_sup, random() AS r_ext,
             random() AS r_done, random() AS r_pick
      FROM generate_series(%(lo)s::int, %(hi)s::int - 1) AS r
    ), picked AS (
      SELECT base.*, %(now)s::timestamptz - age * interval '1 day' AS created, least(age, {OPEN_WINDOW_DAYS})
             AS span, {world.resident_first_id} + n AS resident_id, g.grid_id, g.community_id,
             {pick_sql(cats, "r_cat")} AS code,
             CASE WHEN age < {OPEN_WINDOW_DAYS} AND r_open < 0.9 * (1 - age / {OPEN_WINDOW_DAYS})
                  THEN {open_state} ELSE {final_state} END AS state
      FROM base JOIN bench_scale_grids g ON g.idx = base.n %% {len(world.grid_community)}
    ), timed AS (
      SELECT p.*, c.category_id, c.kind, c.urgency, c.name, c.answers,
        CASE WHEN state IN ('accepted', 'dispatched', 'returned', 'taken', 'in_progress', 'suspended',
                            'resolved', 'closed')
             THEN created + span * 0.05 * interval '1 day' END AS accepted,
        CASE WHEN state IN ('dispatched', 'returned', 'taken', 'in_progress', 'suspended', 'resolved',
                            'closed') THEN created + span * 0.1 * interval '1 day' END AS dispatched,
        CASE WHEN state IN ('taken', 'in_progress', 'suspended', 'resolved', 'closed')
             THEN created + span * 0.15 * interval '1 day' END AS taken,
        CASE WHEN state IN ('resolved', 'closed')
             THEN created + span * (0.2 + 0.5 * r_done) * interval '1 day' END AS resolved,
        CASE WHEN state IN ('closed', 'cancelled', 'rejected')
             THEN created + span * (0.75 + 0.2 * r_done) * interval '1 day' END AS closed,
        CASE WHEN state = 'dispatched' AND r_pool < 0.2 THEN NULL
             WHEN state IN ('dispatched', 'taken', 'in_progress', 'suspended', 'resolved', 'closed')
             THEN (SELECT k.organization_id FROM bench_scale_candidates k
                   WHERE k.category_id = c.category_id AND k.community_id = p.community_id
                     AND k.idx = floor(p.r_org * k.n)::int) END AS organization_id,
        (state = 'dispatched' AND r_pool < 0.2) AS pool
      FROM picked p JOIN bench_scale_categories c ON c.code = p.code
    ), due AS (
      SELECT t.*, CASE
          WHEN state IN ('accepted', 'dispatched', 'returned')
            THEN CASE WHEN kind = 'urgent' THEN created + {accept_urgent} ELSE accepted + {accept_other} END
          WHEN state IN ('taken', 'in_progress')
            THEN taken + CASE kind WHEN 'urgent' THEN {limit["urgent"]} WHEN 'daily' THEN {limit["daily"]}
                                   WHEN 'targeted' THEN {limit["targeted"]} ELSE {limit["professional"]} END
          WHEN state = 'submitted' AND kind = 'urgent' THEN created + {accept_urgent}
          ELSE %(no_deadline)s::timestamptz END AS due_at
      FROM timed t
    )
    SELECT id, to_char(created AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || lpad(id::text, 8, '0'),
      resident_id, category_id, kind, urgency, community_id, grid_id, name || '：请尽快安排', answers::json,
      ({addresses})[1 + floor(r_pick * {len(world.token_addresses)})::int],
      ({names})[1 + floor(r_pick * {len(NAMES)})::int],
      ({phones})[1 + floor(r_pick * {len(world.token_phones)})::int],
      state, organization_id, pool, due_at, due_at < %(now)s, due_at < %(now)s AND r_sup < 0.3,
      CASE WHEN state = 'returned' THEN 1 ELSE 0 END, 0, CASE WHEN dispatched IS NULL THEN 0 ELSE 1 END,
      CASE WHEN state = 'in_progress' AND r_ext < 0.04 THEN json_build_object('amount', 2, 'unit',
           'working_days', 'reason', '需要等待配件', 'requested_at', %(now)s::timestamptz) END,
      false, CASE WHEN resolved IS NULL THEN '' ELSE '已上门处理完毕' END,
      accepted, dispatched, taken, resolved, closed,
      coalesce(closed, resolved, taken, dispatched, accepted, created), 1,
      'od_' || {PUBLIC_ID_STAMP_SQL} || substr(md5(id::text || random()::text), 1, 14), created
    FROM due
    """


LAST_STEPS_SQL = (
    "(VALUES "
    + ", ".join(
        f"('{state}', '{action}', '{role}', '{before}')"
        for state, (action, role, before) in LAST_STEP.items()
    )
    + ") AS s(state, action, role, before)"
)


def _derived_sql(world: World) -> list[str]:
    """INSERTs of the events, offers, ratings and clocks of orders with ids in [%(first)s, %(last)s]."""
    now = "%(now)s::timestamptz"
    in_range = "o.id BETWEEN %(first)s AND %(last)s"
    urgent, other = (f"interval '{ACCEPT_LIMIT[k].total_seconds():.0f} seconds'" for k in ("urgent", "other"))
    accept_due = (
        f"CASE WHEN o.service_kind = 'urgent' THEN o.created_at + {urgent} ELSE o.accepted_at + {other} END"
    )
    complete_due = (
        "o.taken_at + CASE o.service_kind "
        + " ".join(
            f"WHEN '{k}' THEN interval '{v.total_seconds():.0f} seconds'" for k, v in COMPLETE_LIMIT.items()
        )
        + " END"
    )
    accept_amount = "CASE WHEN o.service_kind = 'urgent' THEN 0.5 ELSE 1 END"
    accept_unit = "CASE WHEN o.service_kind = 'urgent' THEN 'hours' ELSE 'working_days' END"
    complete_amount = (
        "CASE o.service_kind WHEN 'urgent' THEN 24 WHEN 'daily' THEN 5 WHEN 'targeted' THEN 3 ELSE 15 END"
    )
    complete_unit = "CASE WHEN o.service_kind = 'urgent' THEN 'hours' ELSE 'working_days' END"

    def clock(name, amount, unit, started, due, stopped, state) -> str:
        return f"""
        INSERT INTO sla_clocks ({", ".join(CLOCK_COLUMNS)})
        SELECT 'order', id, '{name}', community_id, organization_id, amount, unit, true, st,
               started, '[]', CASE WHEN st = 'paused' THEN NULL ELSE due END,
               CASE WHEN st = 'paused' THEN NULL ELSE due - (due - started) / 5 END, '[]',
               CASE WHEN due - (due - started) / 5 < coalesce(stopped, {now})
                    THEN due - (due - started) / 5 END,
               CASE WHEN due < coalesce(stopped, {now}) THEN due END,
               stopped, CASE WHEN stopped IS NOT NULL THEN 'met' END, stopped <= due, 1, started
        FROM (SELECT o.id, o.community_id, o.organization_id, {amount} AS amount, {unit} AS unit,
                     {started} AS started, {due} AS due, {stopped} AS stopped, {state} AS st
              FROM orders o WHERE {in_range} AND {started} IS NOT NULL) c
        """

    return [
        f"""INSERT INTO order_events ({", ".join(EVENT_COLUMNS)})
        SELECT o.id, o.created_at, o.resident_id, 'owner', 'place', NULL, 'submitted', '', '{{}}'
        FROM orders o WHERE {in_range}""",
        f"""INSERT INTO order_events ({", ".join(EVENT_COLUMNS)})
        SELECT o.id,
          coalesce(o.closed_at, o.resolved_at, o.taken_at, o.dispatched_at, o.accepted_at, o.created_at),
          CASE s.role WHEN 'owner' THEN o.resident_id WHEN 'secretary' THEN (
            SELECT m.user_id FROM role_memberships m WHERE m.role = 'secretary' AND m.scope_type = 'community'
            AND m.scope_id = o.community_id ORDER BY m.id LIMIT 1) END,
          s.role, s.action, s.before, o.state, '', '{{}}'
        FROM orders o JOIN {LAST_STEPS_SQL} ON s.state = o.state WHERE {in_range}""",
        f"""INSERT INTO order_offers ({", ".join(OFFER_COLUMNS)})
        SELECT o.id, coalesce(o.organization_id, k.organization_id), o.dispatched_at, o.state = 'dispatched'
        FROM orders o JOIN bench_scale_candidates k ON k.category_id = o.category_id
          AND k.community_id = o.community_id AND k.idx = 0
        WHERE {in_range} AND o.dispatched_at IS NOT NULL AND NOT o.pool
        UNION ALL
        SELECT o.id, k.organization_id, o.dispatched_at, true
        FROM orders o JOIN bench_scale_candidates k ON k.category_id = o.category_id
          AND k.community_id = o.community_id AND k.idx < 3
        WHERE {in_range} AND o.pool""",
        f"""INSERT INTO order_ratings ({", ".join(RATING_COLUMNS)})
        SELECT id, organization_id, community_id, {pick_sql(RATING_WEIGHTS, "r")}, '[]', '', closed_at
        FROM (SELECT o.*, random() AS r, random() AS keep FROM orders o
              WHERE {in_range} AND o.state = 'closed') o WHERE keep < 0.8""",
        clock(
            "accept",
            accept_amount,
            accept_unit,
            "o.accepted_at",
            accept_due,
            "o.taken_at",
            "CASE WHEN o.taken_at IS NULL THEN 'running' ELSE 'stopped' END",
        ),
        clock(
            "complete",
            complete_amount,
            complete_unit,
            "o.taken_at",
            complete_due,
            "o.resolved_at",
            "CASE WHEN o.resolved_at IS NOT NULL THEN 'stopped' WHEN o.state = 'suspended' THEN 'paused' "
            "ELSE 'running' END",
        ),
    ]


def _index_defs(conn, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX ...) of a table's indexes that no constraint owns."""
    return list(
        conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = 'public' AND i.tablename = %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (table,),
        )
    )


BIG_TABLES = ("orders", "order_events", "order_offers", "order_ratings", "sla_clocks")
SEEDED_TABLES = (
    "organizations", "organization_categories", "organization_communities", "organization_reach",
    "organization_records",
    "order_state_counts", "users", "role_memberships",
)  # fmt: skip


def grow(conn: psycopg.Connection, world: World, target: int, log: Callable[[str], None] = print) -> None:
    """Load orders until ``target`` are loaded (older than those already there); commits and analyses.

    Generated by PostgreSQL itself (INSERT ... SELECT over generate_series): Python formatting a million
    rows of COPY text took minutes on two cores, the server takes seconds.
    """
    shape = world.shape
    if target > shape.final_orders:
        raise ValueError(f"target {target:,} above the shape's final_orders {shape.final_orders:,}")
    if target <= world.orders:
        return
    started = time.monotonic()
    _helper_tables(conn, world)
    # Much more than is there already: drop the secondary indexes and build each once at the end.
    rebuild = target - world.orders > 2 * world.orders
    conn.execute("SET synchronous_commit = off")
    # The rows are consistent by construction: skip the foreign-key triggers while loading.
    conn.execute("SET session_replication_role = replica")
    saved: list[tuple[str, str]] = []
    if rebuild:
        for table in BIG_TABLES:
            for name, definition in _index_defs(conn, table):
                saved.append((name, definition))
                conn.execute(f'DROP INDEX "{name}"')
    orders_sql, derived = _orders_sql(world), _derived_sql(world)
    chunk = 250_000
    for lo in range(world.orders, target, chunk):
        hi = min(lo + chunk, target)
        params = {"lo": lo, "hi": hi, "now": world.now, "no_deadline": NO_DEADLINE}
        conn.execute(orders_sql, params)
        span = {
            "first": order_id_for(hi - 1, shape.final_orders),
            "last": order_id_for(lo, shape.final_orders),
            "now": world.now,
        }
        for sql in derived:
            conn.execute(sql, span)
    loaded = time.monotonic()
    for _, definition in saved:
        conn.execute(definition)
    conn.execute("SET session_replication_role = origin")
    # The triggers that keep the board's counts were skipped with the foreign keys: count once instead.
    conn.execute("DELETE FROM order_state_counts")
    conn.execute(
        "INSERT INTO order_state_counts (community_id, state, orders) "
        "SELECT community_id, state, count(*) FROM orders GROUP BY community_id, state"
    )
    _count_records(conn, world.now)
    # Orders placed through the API get ids above every generated one.
    conn.execute(
        "SELECT setval('orders_id_seq', greatest((SELECT max(id) FROM orders), %s))", (shape.final_orders,)
    )
    conn.commit()
    world.orders = target
    indexed = time.monotonic()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        # The seeded tables too: as autovacuum would have by now, so plans see their real sizes.
        for table in BIG_TABLES + SEEDED_TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
        # Write out the loader's dirty pages now: the rows measured next must not pay for them (they did,
        # with p99 ten times higher, while the checkpointer and the backends flushed a million orders).
        conn.execute("CHECKPOINT")
    finally:
        conn.autocommit = autocommit
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in BIG_TABLES}
    conn.commit()
    log(
        f"  {target:,} orders loaded in {loaded - started:.0f} s"
        + (f", indexes rebuilt in {indexed - loaded:.0f} s" if saved else "")
        + f", vacuum/analyse {time.monotonic() - indexed:.0f} s; in all "
        + ", ".join(f"{n:,} {t}" for t, n in counts.items())
    )


def _count_records(conn: psycopg.Connection, now: datetime) -> None:
    """Every organization's record, as orders.recommend.refresh_records counts it and migration 0013's
    triggers keep the rest (the generated orders, ratings and clocks bypass both)."""
    since = now - RECORD_WINDOW
    conn.execute("DELETE FROM organization_records")
    conn.execute(
        "INSERT INTO organization_records (organization_id, ratings, rating_sum, finished, finished_on_time,"
        " counted_at, capacity, dispatch_weight, open_load)"
        " SELECT o.id, coalesce(c.ratings, 0), coalesce(c.rating_sum, 0), coalesce(c.finished, 0),"
        " coalesce(c.on_time, 0), %(now)s, o.capacity, o.dispatch_weight, coalesce(l.open_load, 0)"
        " FROM organizations AS o LEFT JOIN ("
        "  SELECT organization_id, sum(ratings) AS ratings, sum(rating_sum) AS rating_sum,"
        "  sum(finished) AS finished, sum(on_time) AS on_time FROM ("
        "   SELECT organization_id, count(*) AS ratings, sum(level) AS rating_sum,"
        "   0 AS finished, 0 AS on_time FROM order_ratings"
        "   WHERE organization_id IS NOT NULL AND created_at >= %(since)s"
        "   GROUP BY organization_id"
        "   UNION ALL"
        "   SELECT organization_id, 0, 0, count(*), count(*) FILTER (WHERE on_time)"
        "   FROM sla_clocks WHERE organization_id IS NOT NULL AND subject_type = 'order'"
        "   AND name = 'complete' AND state = 'stopped' AND stopped_at >= %(since)s"
        "   GROUP BY organization_id"
        "  ) AS both_kinds GROUP BY organization_id"
        " ) AS c ON c.organization_id = o.id LEFT JOIN ("
        "  SELECT organization_id, count(*) AS open_load FROM orders"
        f"  WHERE organization_id IS NOT NULL AND {LOAD_STATES_SQL} GROUP BY organization_id"
        " ) AS l ON l.organization_id = o.id",
        {"now": now, "since": since},
    )


def placing_residents(world: World, count: int) -> list[int]:
    """``count`` residents (their numbers n, as in BENCH_OPENID) spread over every community but the first,
    whose board the board rows read: the run's own placements would otherwise pile thousands of new orders
    onto that board, unlike anything a larger table brings (the pool orders go to the last community)."""
    boarded = world.community_ids[0]
    elsewhere = [n for n, grid in enumerate(world.resident_grid) if world.grid_community[grid] != boarded]
    # A seeded sample: a fixed stride would meet the grids' own period and keep to a few of them.
    return sorted(random.Random(count).sample(elsewhere, min(count, len(elsewhere))))


def add_pool_orders(conn: psycopg.Connection, world: World, count: int) -> list[str]:
    """``count`` fresh orders dispatched to a pool of every contender organization; their public ids."""
    cat = world.categories[POOL_CATEGORY]
    community = world.community_ids[-1]
    grids = [g for g, c in world.grid_community.items() if c == community]
    residents = [r for r, g in zip(world.resident_ids, world.resident_grid, strict=True) if g in grids][:500]
    ids = _ids(conn, "SELECT nextval('orders_id_seq') FROM generate_series(1, %s)", (count,))
    rng = random.Random(ids[0])
    batch, public_ids = _Batch(), []
    at = datetime.now(UTC).replace(microsecond=0)
    due = at + ACCEPT_LIMIT["other"]
    secretary = world.secretary_ids[community]
    for order_id in ids:
        resident, pid = rng.choice(residents), public_id("od")
        public_ids.append(pid)
        batch.orders.append(
            copy_line(
                [
                    order_id,
                    f"{(at + timedelta(hours=8)):%Y%m%d}{order_id:08d}",
                    resident,
                    cat["id"],
                    cat["kind"],
                    URGENCY_RANK[cat["kind"]],
                    community,
                    grids[0],
                    "抢单压测",
                    cat["answers"],
                    world.token_addresses[0],
                    NAMES[0],
                    world.token_phones[0],
                    "dispatched",
                    None,
                    True,
                    due,
                    False,
                    False,
                    0,
                    0,
                    1,
                    None,
                    False,
                    "",
                    at,
                    at,
                    None,
                    None,
                    None,
                    at,
                    1,
                    pid,
                    at,
                ]
            )
        )
        batch.events.append(
            copy_line([order_id, at, resident, "owner", "place", None, "submitted", "", "{}"])
        )
        dispatch = [order_id, at, secretary, "secretary", "dispatch", "submitted", "dispatched", "", "{}"]
        batch.events.append(copy_line(dispatch))
        for org in world.contender_org_ids:
            batch.offers.append(copy_line([order_id, org, at, True]))
        _clock(batch, world, order_id, "accept", "other", community, None, at, due, None, "running")
    _copy(conn, "orders", ORDER_COLUMNS, batch.orders)
    _copy(conn, "order_events", EVENT_COLUMNS, batch.events)
    _copy(conn, "order_offers", OFFER_COLUMNS, batch.offers)
    _copy(conn, "sla_clocks", CLOCK_COLUMNS, batch.clocks)
    conn.commit()
    return public_ids


def take_outcome(conn: psycopg.Connection, public_ids: list[str]) -> dict[str, int]:
    """How the pool orders ended: taken (exactly one take event), untouched, and anything inconsistent."""
    row = conn.execute(
        """
        SELECT
          count(*) FILTER (WHERE o.state = 'taken' AND e.takes = 1 AND o.organization_id IS NOT NULL
                           AND a.active_offers = 0),
          count(*) FILTER (WHERE o.state = 'dispatched' AND e.takes = 0),
          count(*) FILTER (WHERE e.takes > 1),
          count(*) FILTER (WHERE NOT ((o.state = 'taken' AND e.takes = 1 AND o.organization_id IS NOT NULL
                                       AND a.active_offers = 0)
                                      OR (o.state = 'dispatched' AND e.takes = 0)))
        FROM orders o
        CROSS JOIN LATERAL (SELECT count(*) AS takes FROM order_events
                            WHERE order_id = o.id AND action = 'take') e
        CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE active) AS active_offers FROM order_offers
                            WHERE order_id = o.id) a
        WHERE o.public_id = ANY(%s)
        """,
        (public_ids,),
    ).fetchone()
    return {"taken_once": row[0], "untouched": row[1], "taken_twice": row[2], "inconsistent": row[3]}


def board_cursor(conn: psycopg.Connection, community_id: int, depth: float = 0.8) -> tuple[str, int, int]:
    """A cursor ``depth`` of the way into a community's needs-action board: (cursor, position, size)."""
    size = conn.execute(
        "SELECT count(*) FROM orders WHERE community_id = %s "
        "AND (state IN ('submitted', 'accepted', 'returned', 'dispatched') OR extension_request IS NOT NULL)",
        (community_id,),
    ).fetchone()[0]
    position = max(0, int(size * depth) - 1)
    row = conn.execute(
        "SELECT urgency_rank, due_at, id FROM orders WHERE community_id = %s "
        "AND (state IN ('submitted', 'accepted', 'returned', 'dispatched') OR extension_request IS NOT NULL) "
        "ORDER BY urgency_rank, due_at, id OFFSET %s LIMIT 1",
        (community_id, position),
    ).fetchone()
    if row is None:
        raise ValueError(f"community {community_id} has no order on its board")
    return encode_board_cursor(*row), position, size


def recommend_order(conn: psycopg.Connection, world: World) -> str:
    """The public id of a recent order waiting for dispatch (accepted, or returned by an organization) in
    the first community, in a much-served category. The data is random: either state keeps the odds of
    finding none negligible."""
    row = conn.execute(
        "SELECT o.public_id FROM orders o JOIN service_categories c ON c.id = o.category_id "
        "WHERE o.community_id = %s AND o.state IN ('accepted', 'returned') AND c.code = 'home_repair' "
        "ORDER BY o.id DESC LIMIT 1",
        (world.community_ids[0],),
    ).fetchone()
    if row is None:
        raise ValueError("no accepted or returned home_repair order in the first community")
    return row[0]


def community_public_id(conn: psycopg.Connection, community_id: int) -> str:
    return conn.execute("SELECT public_id FROM communities WHERE id = %s", (community_id,)).fetchone()[0]
