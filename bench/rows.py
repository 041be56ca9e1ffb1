"""What is measured: one entry per table row. Adding a benchmark is adding a Row to ROWS."""

from dataclasses import dataclass

APP = "app"
BASELINE = "baseline"


@dataclass(frozen=True)
class Row:
    name: str
    server: str  # APP or BASELINE
    method: str
    path: str  # with its query string
    body: dict | None = None  # JSON sent with every request
    auth: bool = False  # send "Authorization: Bearer <token>" of a user signed in before the run
    login_codes: bool = False  # send a fresh wx.login code per request (login.lua) instead of `body`
    compare_to: str | None = None  # the baseline row whose req/s this row's is divided by
    about: str = ""
    # Order rows (bench/orders.py): measured at each scale phase, with generated data and signed-in roles;
    # `path` may hold {order} (the order recommended for) and {cursor} (a board cursor far in).
    phased: bool = False
    script_name: str | None = None  # a lua script of its own in bench/lua/, fed by bench/orders.py
    connections: int | None = None  # instead of --connections (a latency target measured without queueing)
    expect_conflicts: bool = False  # 409 is a right answer here (taking contended orders), not an error
    target_ratio: float | None = None  # the goal for `ratio`
    p99_target_ms: float | None = None  # the goal for p99
    # Rows with data of their own, loaded before the servers start: "bookings" (bench/bookings.py) or
    # "errands" (bench/errands_scale.py); `path` may hold {cursor} (a queue cursor far in).
    dataset: str | None = None

    @property
    def script(self) -> str:
        if self.script_name:
            return self.script_name
        return "login.lua" if self.login_codes else "request.lua"


ROWS: list[Row] = [
    Row("baseline-hello", BASELINE, "GET", "/hello", about="bare Flask returning a constant JSON object"),
    Row(
        "baseline-insert",
        BASELINE,
        "POST",
        "/rows",
        body={"name": "bench", "value": 42},
        about="hand-validated JSON body, one-row INSERT ... RETURNING through SQLAlchemy Core",
    ),
    Row(
        "baseline-select20",
        BASELINE,
        "GET",
        "/rows?after=5000",
        about="20 rows by an indexed keyset SELECT (id > N ORDER BY id LIMIT 20), as JSON",
    ),
    Row(
        "app-login",
        APP,
        "POST",
        "/api/v1/auth/login",
        login_codes=True,
        compare_to="baseline-insert",
        about="WeChat login: code2session through wechatpy to the fake server, new user, session INSERT",
    ),
    Row(
        "app-me",
        APP,
        "GET",
        "/api/v1/me",
        auth=True,
        compare_to="baseline-select20",
        about="authenticated GET: bearer token check, session and user loaded, profile serialized",
    ),
    Row(
        "orders-place",
        APP,
        "POST",
        "/api/v1/orders",
        phased=True,
        script_name="orders_place.lua",
        compare_to="baseline-insert",
        target_ratio=0.8,
        about="a resident places an order (Idempotency-Key fresh per request; 1,000 residents in turn)",
    ),
    Row(
        "orders-board-first",
        APP,
        "GET",
        "/api/v1/orders/board",
        phased=True,
        compare_to="baseline-select20",
        target_ratio=0.8,
        about="a secretary's dispatch board, first page of 20 with the counts per state",
    ),
    Row(
        "orders-board-deep",
        APP,
        "GET",
        "/api/v1/orders/board?cursor={cursor}",
        phased=True,
        compare_to="baseline-select20",
        target_ratio=0.8,
        about="the same board, a page 80% of the way in (keyset cursor)",
    ),
    Row(
        "orders-recommend",
        APP,
        "GET",
        "/api/v1/orders/{order}/recommendations",
        phased=True,
        # One connection per gunicorn worker: p99 is the request's own time, not time queued behind others.
        connections=2,
        p99_target_ms=20,
        about="organizations ranked for one order (hundreds serve its category and community)",
    ),
    Row(
        "orders-take-contention",
        APP,
        "POST",
        "/api/v1/orders/{{id}}/take",
        phased=True,
        script_name="orders_take.lua",
        expect_conflicts=True,
        about="8 organizations' admins take each pooled order at once: one 200 per order, 409 for the rest",
    ),
    Row(
        "appointments-book-contention",
        APP,
        "POST",
        "/api/v1/appointments",
        dataset="bookings",
        script_name="appointments_book.lua",
        expect_conflicts=True,
        compare_to="baseline-insert",
        about="24 residents book each occurrence at once (8 places): 201 for 8, 409 slot_full for the rest; "
        "afterwards no occurrence may hold more than its capacity",
    ),
    Row(
        "errands-agent-queue-first",
        APP,
        "GET",
        "/api/v1/errands/queue",
        dataset="errands",
        compare_to="baseline-select20",
        about="a proxy agent's queue (about 2,000 of the street's 100,000 open errands), first page of 20",
    ),
    Row(
        "errands-agent-queue-deep",
        APP,
        "GET",
        "/api/v1/errands/queue?cursor={cursor}",
        dataset="errands",
        compare_to="baseline-select20",
        about="the same queue, a page 80% of the way in (keyset cursor)",
    ),
]

DATASETS = ("bookings", "errands")


def select_rows(rows: list[Row], only: list[str]) -> list[Row]:
    """Rows whose name contains any of `only` (all rows when empty), plus the baselines they compare to."""
    if not only:
        return list(rows)
    wanted = {r.name for r in rows if any(o.lower() in r.name.lower() for o in only)}
    if not wanted:
        raise ValueError(f"no row matches {', '.join(only)}; rows: {', '.join(r.name for r in rows)}")
    # A ratio needs its baseline measured in the same run, on the same machine state.
    wanted |= {r.compare_to for r in rows if r.name in wanted and r.compare_to}
    return [r for r in rows if r.name in wanted]


def check_rows(rows: list[Row]) -> None:
    """Catch a mistyped entry before anything starts."""
    names = [r.name for r in rows]
    if len(names) != len(set(names)):
        raise ValueError("row names must be unique")
    by_name = {r.name: r for r in rows}
    for r in rows:
        if r.server not in (APP, BASELINE):
            raise ValueError(f"{r.name}: server must be {APP!r} or {BASELINE!r}")
        if r.compare_to is not None and (
            r.compare_to not in by_name or by_name[r.compare_to].server != BASELINE
        ):
            raise ValueError(f"{r.name}: compare_to must name a baseline row, not {r.compare_to!r}")
        if r.dataset is not None and (r.dataset not in DATASETS or r.phased):
            raise ValueError(f"{r.name}: dataset must be one of {', '.join(DATASETS)} (and not phased)")
        if r.login_codes and r.body is not None:
            raise ValueError(f"{r.name}: a login_codes row builds its own body")
