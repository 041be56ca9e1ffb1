"""The order rows' scale phases: load generated data, sign the roles in, measure at the first size, grow to
the final size, measure again, and print how each number grew. Data generation itself is bench/scale.py."""

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import scale
from bench.report import RowResult, format_table
from bench.rows import Row

FULL_SIZES = (10_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
# Residents signed in for the placement row, taking turns: enough that each places a few dozen orders in a
# phase, as a street's residents would, not thousands each.
PLACERS = 1000
SIGN_IN_THREADS = 4
# Sizing the pools of orders to take: requests at most this fast, every contender once per order.
TAKE_RATE_CEILING = 1500
PLACE_BODY = {
    "category": "home_repair",
    "description": "厨房水龙头漏水，需要上门维修",
    "answers": {"item": ["tap"]},
    "address": "幸福街道3号楼2单元501室",
    "contact_name": "王秀英",
    "contact_phone": "13812348000",
}


def short_count(n: int) -> str:
    """10000 -> "10k", 1000000 -> "1M", 2500 -> "2.5k": a phase's label."""
    for div, unit in ((1_000_000, "M"), (1_000, "k")):
        if n >= div:
            value = n / div
            return (f"{value:.0f}" if value == int(value) else f"{value:.1f}".rstrip("0").rstrip(".")) + unit
    return str(n)


def parse_sizes(text: str) -> tuple[int, int]:
    """ "10000,1000000" (underscores allowed) -> (10000, 1000000); the second must be the larger."""
    parts = [p.strip().replace("_", "") for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError("expected two order counts, FIRST,FINAL")
    first, final = int(parts[0]), int(parts[1])
    if not 0 < first < final:
        raise ValueError("FINAL must be larger than FIRST, and both above 0")
    return first, final


def growth(first: float | None, final: float | None) -> float | None:
    return None if not first or final is None else final / first


@dataclass
class Inputs:
    """What one row sends in the current phase: its path and its lua script's arguments, per stage."""

    path: str
    args: Callable[[str], list[str]]  # stage ("warm" or "measure") -> script arguments


class OrderPhases:
    def __init__(
        self, dsn: str, sizes: tuple[int, int], fernet_key: str, work: Path, log: Callable[[str], None]
    ):
        self.dsn = dsn
        self.sizes = sizes
        self.fernet_key = fernet_key
        self.work = work
        self.log = log
        self.shape = scale.Shape(final_orders=sizes[1])
        self.world: scale.World | None = None
        self.tokens: dict[str, list[str]] = {}
        self.take_ids: dict[str, list[str]] = {}  # stage -> the pool orders handed to wrk
        self.recommend_id = ""
        self.phase = ""
        self.runs = 0

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn)

    def load_first(self) -> None:
        first = self.sizes[0]
        self.log(
            f"orders: generating a street of {self.shape.communities} communities, "
            f"{self.shape.organizations:,} organizations, {self.shape.residents:,} residents, "
            f"{first:,} orders"
        )
        with self._connect() as conn:
            self.world = scale.seed_world(conn, self.shape, self.fernet_key)
            scale.grow(conn, self.world, first, log=self.log)
            self.recommend_id = scale.recommend_order(conn, self.world)
        self.phase = short_count(first)

    def grow_final(self) -> None:
        final = self.sizes[1]
        self.log(f"orders: growing to {final:,} orders (older history)")
        assert self.world is not None
        with self._connect() as conn:
            scale.grow(conn, self.world, final, log=self.log)
        self.phase = short_count(final)

    def sign_in(self, sign_in_as: Callable[[str], str]) -> None:
        """Tokens for the secretary of the first community, residents, and every contender's admin."""
        shape = self.shape
        assert self.world is not None
        fmt = scale.BENCH_OPENID.format
        placers = [fmt(role="resident", n=n) for n in scale.placing_residents(self.world, PLACERS)]
        with ThreadPoolExecutor(SIGN_IN_THREADS) as pool:
            residents = list(pool.map(sign_in_as, placers))
        self.tokens = {
            "secretary": [sign_in_as(fmt(role="secretary", n=0))],
            "resident": residents,
            "org_admin": [sign_in_as(fmt(role="org-admin", n=n)) for n in range(shape.contenders)],
        }

    def _file(self, name: str, lines: list[str]) -> str:
        path = self.work / name
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def inputs(self, rows: list[Row], duration: int, warmup: int) -> dict[str, Inputs]:
        """Each order row's path and script arguments for the current phase."""
        assert self.world is not None
        with self._connect() as conn:
            cursor, position, size = scale.board_cursor(conn, self.world.community_ids[0])
        self.log(f"  board of the first community: {size:,} orders; deep page after #{position + 1:,}")
        secretary = self.tokens["secretary"][0]
        out: dict[str, Inputs] = {}
        for row in rows:
            if not row.phased:
                continue
            path = row.path.format(order=self.recommend_id, cursor=cursor)
            if row.script_name == "orders_place.lua":
                tokens = self._file("resident-tokens.txt", self.tokens["resident"])
                out[row.name] = Inputs(path, self._place_args(tokens))
            elif row.script_name == "orders_take.lua":
                # The script sets each request's path; wrk only needs a URL it can parse.
                out[row.name] = Inputs("/api/v1/orders", self._take_args(duration, warmup))
            else:
                out[row.name] = Inputs(path, lambda stage, row=row: [row.method, "", secretary])
        return out

    def _place_args(self, tokens_path: str) -> Callable[[str], list[str]]:
        import json

        def args(stage: str) -> list[str]:
            self.runs += 1
            # Keys must be new in every run: the same residents place in every phase.
            return [
                tokens_path,
                json.dumps(PLACE_BODY, ensure_ascii=False),
                f"{self.phase}{stage}{self.runs}",
            ]

        return args

    def _take_args(self, duration: int, warmup: int) -> Callable[[str], list[str]]:
        def args(stage: str) -> list[str]:
            assert self.world is not None
            seconds = warmup if stage == "warm" else duration
            count = math.ceil(TAKE_RATE_CEILING * (seconds + 2) / self.shape.contenders) + 20
            with self._connect() as conn:
                ids = scale.add_pool_orders(conn, self.world, count)
            self.take_ids[stage] = ids
            ids_path = self._file(f"take-ids-{stage}.txt", ids)
            tokens_path = self._file("org-admin-tokens.txt", self.tokens["org_admin"])
            return [ids_path, tokens_path, "2"]

        return args

    def check_take(self, result: RowResult) -> None:
        """After the take row: every order taken at most once, and as many taken as wrk saw 200s."""
        ids = self.take_ids.get("measure") or []
        if result.result is None or not ids:
            return
        with self._connect() as conn:
            outcome = scale.take_outcome(conn, ids)
        statuses = result.result.statuses or {}
        won, refused = statuses.get("200", 0), statuses.get("409", 0)
        taken = outcome["taken_once"]
        # wrk stops with requests in flight: their takes can commit after it stopped counting.
        in_flight = result.row.connections or 16
        problems = []
        if outcome["taken_twice"] or outcome["inconsistent"]:
            problems.append(
                f"{outcome['taken_twice']:,} taken twice, {outcome['inconsistent']:,} inconsistent"
            )
        if not won <= taken <= won + in_flight:
            problems.append(f"{taken:,} orders taken in the database but wrk saw {won:,} 200s")
        result.note = (
            f"{taken:,} pooled orders taken exactly once ({won:,} 200s, {refused:,} 409s, "
            f"{self.shape.contenders} contenders per order); {outcome['untouched']:,} untouched"
        )
        if problems:
            result.problem = "; ".join(problems)


def growth_section(results: list[RowResult], sizes: tuple[int, int]) -> str:
    """How each order row's numbers grew from the first phase to the final one, with its target."""
    first, final = short_count(sizes[0]), short_count(sizes[1])
    by_key = {(r.row.name, r.phase): r for r in results}
    names = list(dict.fromkeys(r.row.name for r in results if r.row.phased))
    headers = [
        "row", f"req/s {first}", f"req/s {final}", "growth", f"p99 {first}", f"p99 {final}", "growth",
        f"ratio {first}", f"ratio {final}", "target", "met",
    ]  # fmt: skip
    body = []
    for name in names:
        a, b = by_key.get((name, first)), by_key.get((name, final))
        wa = a.result if a else None
        wb = b.result if b else None
        rps = (wa.requests_per_sec if wa else None, wb.requests_per_sec if wb else None)
        p99 = (wa.p99_ms if wa else None, wb.p99_ms if wb else None)
        ratio = (a.ratio if a else None, b.ratio if b else None)
        row = (a or b).row
        body.append(
            [
                name,
                _n(rps[0], 1),
                _n(rps[1], 1),
                _x(growth(*rps)),
                _n(p99[0]),
                _n(p99[1]),
                _x(growth(*p99)),
                _x(ratio[0]),
                _x(ratio[1]),
                target_text(row),
                _met(row, [x for x in (a, b) if x is not None]),
            ]
        )
    table = format_table(headers, body, right=set(range(1, 9)))
    intro = [
        f"Scale: the order rows at {sizes[0]:,} orders, then again after growing to {sizes[1]:,}",
        "(older history added; the recent weeks, open orders and boards look alike at both sizes).",
        "growth = the final number / the first: flat is 1.00x; for req/s lower is worse, for p99 higher",
        "is worse. Each phase's ratio is against its baseline measured in the same phase.",
    ]
    return "\n".join(intro) + "\n\n" + table


def target_text(row: Row) -> str:
    if row.target_ratio is not None:
        return f">= {row.target_ratio:.2f}x {row.compare_to}"
    if row.p99_target_ms is not None:
        return f"p99 < {row.p99_target_ms:g} ms"
    if row.expect_conflicts:
        return "each order taken once"
    return "-"


def _met(row: Row, phases: list[RowResult]) -> str:
    verdicts = []
    for r in phases:
        if r.result is None or r.has_errors:
            verdicts.append("?")
        elif row.target_ratio is not None:
            verdicts.append("yes" if r.ratio is not None and r.ratio >= row.target_ratio else "NO")
        elif row.p99_target_ms is not None:
            p99 = r.result.p99_ms
            verdicts.append("yes" if p99 is not None and p99 < row.p99_target_ms else "NO")
        else:
            verdicts.append("yes")
    return "/".join(verdicts) if verdicts else "-"


def _n(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
