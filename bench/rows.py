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

    @property
    def script(self) -> str:
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
]


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
        if r.login_codes and r.body is not None:
            raise ValueError(f"{r.name}: a login_codes row builds its own body")
