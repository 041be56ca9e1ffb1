"""``python -m bench``: set everything up, warm up, measure every row with wrk, print the table."""

import argparse
import base64
import datetime as dt
import json
import math
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import requests
import sqlalchemy as sa

from bench import baseline, bookings, errands_scale, jobs, orders
from bench.procmem import MemorySampler, Track
from bench.report import RowResult, keep_median_pair, memory_table, result_json, results_table, track_json
from bench.rows import APP, BASELINE, ROWS, Row, check_rows, select_rows
from bench.servers import (
    REPO_ROOT,
    BenchSetupError,
    FakeWeChatProcess,
    Gunicorn,
    ensure_database,
    flush_redis,
    reset_schema,
    run_migrations,
)
from bench.wrk import WrkError, WrkResult, ensure_wrk, run_wrk, wrk_version

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DB_NAME = "sandan_bench"
DATABASE_URL = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
PSYCOPG_DSN = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={DB_NAME}"
# A Redis db of its own: the run flushes it.
REDIS_URL = "redis://127.0.0.1:6379/13"

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WARMUP_SECONDS = 1
SAMPLE_INTERVAL = 0.5
WORKERS = 2
MAX_WRK_THREADS = 2

# Login codes are issued before each login run, sized from the warm-up's rate: issuing runs at about
# 1,000 codes/s, so sizing everything for the ceiling would spend longer issuing than measuring.
CODE_RATE_CEILING = 2000
CODE_RATE_FLOOR = 50
CODE_SAFETY = 2.5
WARMUP_CODE_RATE = 1000

# Fixed and the caller's environment overridden, so a production-ish shell cannot change what is measured.
APP_SETTINGS = {
    "SANDAN_ENV": "development",
    "SECRET_KEY": "bench-secret-key-not-for-production-use",
    "SANDAN_ENCRYPTION_KEYS": base64.urlsafe_b64encode(b"sandan-bench-encryption-key-0000").decode(),
    "SANDAN_HMAC_KEY": "bench-hmac-key-not-for-production-use",
    "WECHAT_APPID": "wx-sandan-dev",
    "WECHAT_SECRET": "dev-wechat-secret",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the API under gunicorn against a bare Flask baseline (needs PostgreSQL, "
        "Redis and wrk; see bench/README.md).",
    )
    parser.add_argument("--duration", type=int, default=None, help="seconds per row (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--quick", action="store_true", help="3 s per row and small job rows: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run rows (HTTP and job rows) whose name contains NAME (repeatable or comma-separated); "
        "the baselines they compare to run too",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--orders-sizes",
        metavar="FIRST,FINAL",
        help="order counts of the two scale phases of the order rows (default 10000,1000000; "
        "10000,100000 with --quick)",
    )
    parser.add_argument(
        "--errands-size",
        type=int,
        metavar="N",
        help=f"open errands in the street for the agent-queue rows (default {errands_scale.FULL_OPEN:,}; "
        f"{errands_scale.QUICK_OPEN:,} with --quick)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="a row with a ratio target is measured this many times, each right after its baseline; "
        "its ratio is the median pair's (default 3; 1 with --quick)",
    )
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if args.pairs is None:
        args.pairs = 1 if args.quick else 3
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.duration < 1:
        parser.error("--duration must be at least 1 second")
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    if args.errands_size is None:
        args.errands_size = errands_scale.QUICK_OPEN if args.quick else errands_scale.FULL_OPEN
    if args.errands_size < 100:
        parser.error("--errands-size must be at least 100")
    args.only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    try:
        args.orders_sizes = (
            orders.parse_sizes(args.orders_sizes)
            if args.orders_sizes
            else (orders.QUICK_SIZES if args.quick else orders.FULL_SIZES)
        )
    except ValueError as exc:
        parser.error(f"--orders-sizes: {exc}")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _raise_exit(signum, frame):
    # Turns SIGTERM into an exception so the finally blocks stop every server we started.
    raise SystemExit(128 + signum)


def _one_line(exc: Exception, limit: int = 300) -> str:
    return " ".join(str(exc).split())[:limit]


def codes_for(rate: float, seconds: float, connections: int) -> int:
    """Codes a login run may use at `rate`/s, plus some for requests in flight when time runs out."""
    return math.ceil(rate * seconds) + 2 * connections


def sign_in(app: Gunicorn, fake: FakeWeChatProcess, openid: str | None = None) -> str:
    """An access token for a user (a new one, or the one with `openid`) signed in the way the mini-program
    does it."""
    code = fake.issue_code(openid)
    response = requests.post(app.url + "/api/v1/auth/login", json={"code": code}, timeout=30)
    if response.status_code != 200:
        raise BenchSetupError(f"sign-in failed: {response.status_code} {response.text[:500]}")
    return response.json()["access_token"]


class Runner:
    """Runs wrk for rows, feeding login rows their codes and remembering each row's warm-up rate."""

    def __init__(self, args, wrk: str, servers: dict[str, Gunicorn], fake: FakeWeChatProcess, work: Path):
        self.args = args
        self.wrk = wrk
        self.servers = servers
        self.fake = fake
        self.work = work
        self.token: str | None = None
        self.threads = min(MAX_WRK_THREADS, args.connections)
        self.warm_rates: dict[str, float | None] = {}
        # Order rows: path and script arguments of the current scale phase (bench/orders.py); rows with a
        # dataset of their own too (bench/bookings.py, bench/errands_scale.py).
        self.inputs: dict[str, orders.Inputs] = {}
        # Checks run after a row is measured (the booking row's database check), by row name.
        self.checks: dict[str, Callable[[RowResult], None]] = {}

    def _wrk(self, row: Row, seconds: int, codes: int | None) -> WrkResult:
        connections = row.connections or self.args.connections
        threads = min(MAX_WRK_THREADS, connections)
        path = row.path
        if row.name in self.inputs:
            path = self.inputs[row.name].path
            script_args = self.inputs[row.name].args("warm" if seconds == WARMUP_SECONDS else "measure")
        elif row.login_codes:
            assert codes is not None
            path = self.work / f"codes-{row.name}.txt"
            log(f"  issuing {codes:,} wx.login codes for {row.name} ...")
            self.fake.issue_codes(codes, path)
            script_args = [str(path), str(self.threads)]
            path = row.path
        else:
            body = json.dumps(row.body) if row.body is not None else ""
            script_args = [row.method, body, self.token if row.auth and self.token else ""]
        result, _output = run_wrk(
            self.wrk,
            self.servers[row.server].url + path,
            duration=seconds,
            connections=connections,
            threads=threads,
            script=row.script,
            script_args=script_args,
        )
        return result

    def run(self, row: Row) -> WrkResult:
        """One measured run of a row that needs no login codes."""
        return self._wrk(row, self.args.duration, None)

    def warm_up(self, row: Row) -> None:
        log(f"warming up {row.name} ({WARMUP_SECONDS} s)")
        codes = (
            codes_for(WARMUP_CODE_RATE, WARMUP_SECONDS, self.args.connections) if row.login_codes else None
        )
        try:
            result = self._wrk(row, WARMUP_SECONDS, codes)
        except WrkError as exc:
            log(f"  warm-up of {row.name} failed: {exc}")
            self.warm_rates[row.name] = None
            return
        # A warm-up that ran out of codes measured how fast failures are, not logins.
        starved = bool(result.codes_exhausted)
        self.warm_rates[row.name] = None if starved else result.requests_per_sec

    def measure(self, row: Row) -> RowResult:
        duration = self.args.duration
        log(f"measuring {row.name} ({duration:g} s)")
        if not row.login_codes:
            try:
                return RowResult(row, self._wrk(row, duration, None))
            except WrkError as exc:
                return RowResult(row, error=_one_line(exc))
        warm = self.warm_rates.get(row.name)
        rate = (
            CODE_RATE_CEILING
            if warm is None
            else min(CODE_RATE_CEILING, max(CODE_RATE_FLOOR, warm * CODE_SAFETY))
        )
        # Bounded: a second attempt at most, with codes for the ceiling rate.
        for attempt in (1, 2):
            codes = codes_for(rate, duration, self.args.connections)
            try:
                result = self._wrk(row, duration, codes)
            except WrkError as exc:
                return RowResult(row, error=_one_line(exc))
            if not result.codes_exhausted:
                note = f"{codes:,} codes issued for {result.requests:,} logins" + (
                    " (second attempt: the first ran out of codes)" if attempt == 2 else ""
                )
                return RowResult(row, result, note=note)
            if rate >= CODE_RATE_CEILING:
                break
            log(f"  {row.name} ran out of codes ({result.codes_exhausted:,} requests without one); again")
            rate = CODE_RATE_CEILING
        return RowResult(
            row,
            result,
            note=f"ran out of codes: {result.codes_exhausted:,} requests went without one (and failed)"
            + (" on the second attempt too" if attempt == 2 else ""),
        )


def run(args, rows: list[Row], job_rows: list[jobs.JobRow]) -> tuple[str, dict, bool]:
    """Everything between setting up and tearing down; returns the report, its JSON, and whether all ran."""
    wrk = ensure_wrk() if rows else None
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sandan-bench-"))
    env = {
        **os.environ,
        **APP_SETTINGS,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SANDAN_INSTANCE_DIR": str(work / "instance"),
    }
    fake = FakeWeChatProcess(RESULTS_DIR / "fake-wechat.log")
    servers: dict[str, Gunicorn] = {}
    results: list[RowResult] = []
    tracks: list[Track] = []
    job_results: list[jobs.JobResult] = []
    try:
        log(f"preparing PostgreSQL database {DB_NAME} and Redis db 13")
        ensure_database(PG_HOST, PG_PORT, PG_USER, DB_NAME)
        engine = sa.create_engine(DATABASE_URL)
        try:
            reset_schema(engine)
            flush_redis(REDIS_URL)
            log("running sandan migrate")
            run_migrations(env)
            baseline.create_and_seed(engine)
        finally:
            engine.dispose()

        fake.start()
        env["WECHAT_API_BASE_URL"] = fake.url
        if rows:
            results, tracks = measure_http(args, rows, wrk, env, fake, work, servers)
        # The gunicorns are stopped first: the workers get the machine to themselves.
        for server in servers.values():
            server.stop()
        if job_rows:
            job_results = jobs.run_job_rows(
                job_rows, env=env, fake=fake, redis_url=REDIS_URL, log_dir=RESULTS_DIR, log=log
            )
    finally:
        for server in servers.values():
            server.stop()
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)

    # A row's ratio is against its baseline measured in the same scale phase.
    by_name = {(r.row.name, r.phase): r for r in results}
    for r in results:
        if r.baseline_rps is not None:  # measured in pairs with its baseline
            continue
        base = by_name.get((r.row.compare_to, r.phase)) if r.row.compare_to else None
        if base is None and r.row.compare_to and r.phase is None:
            # A row outside the order phases, run beside them: its baseline as first measured.
            base = next((b for b in results if b.row.name == r.row.compare_to), None)
        if base is not None and base.result is not None:
            r.baseline_rps = base.result.requests_per_sec
    return render(args, wrk, results, tracks, job_results)


def measure_http(
    args, rows: list[Row], wrk: str, env: dict, fake: FakeWeChatProcess, work: Path, servers: dict
) -> tuple[list[RowResult], list[Track]]:
    """The HTTP rows: both gunicorns started (into `servers`, which the caller stops), warmed up, measured."""
    sampler: MemorySampler | None = None
    phases: orders.OrderPhases | None = None
    phased_names = {r.name for r in rows if r.phased} | {
        r.compare_to for r in rows if r.phased and r.compare_to
    }
    if any(r.phased for r in rows):
        phases = orders.OrderPhases(
            PSYCOPG_DSN, args.orders_sizes, APP_SETTINGS["SANDAN_ENCRYPTION_KEYS"], work, log
        )
        phases.load_first()
    booking_row: bookings.BookingRow | None = None
    errand_rows: errands_scale.ErrandRows | None = None
    datasets = {r.dataset for r in rows}
    if "bookings" in datasets:
        booking_row = bookings.BookingRow(PSYCOPG_DSN, work, args.connections, log)
        booking_row.load()
    if "errands" in datasets:
        errand_rows = errands_scale.ErrandRows(PSYCOPG_DSN, args.errands_size, log)
        errand_rows.load()
    try:
        log(f"fake WeChat server at {fake.url}; starting gunicorn for the app and the baseline")
        servers[APP] = Gunicorn(APP, "backend.wsgi:app", env, RESULTS_DIR / "app-gunicorn.log", WORKERS)
        servers[BASELINE] = Gunicorn(
            BASELINE, "bench.baseline:create_app()", env, RESULTS_DIR / "baseline-gunicorn.log", WORKERS
        )
        for server in servers.values():
            server.start()
        servers[APP].wait_ready("/readyz")
        servers[BASELINE].wait_ready("/hello")

        runner = Runner(args, wrk, servers, fake, work)
        if any(r.auth for r in rows):
            runner.token = sign_in(servers[APP], fake)

        def sign_in_as(openid: str) -> str:
            return sign_in(servers[APP], fake, openid)

        # Rows with data of their own: their paths and script arguments, and what to check after them.
        own: dict[str, orders.Inputs] = {}
        if booking_row is not None:
            booking_row.sign_in(sign_in_as)
            booking_args = booking_row.args(args.duration, WARMUP_SECONDS, runner.threads)
            for row in rows:
                if row.dataset == "bookings":
                    own[row.name] = orders.Inputs(row.path, booking_args)
                    runner.checks[row.name] = booking_row.check
        if errand_rows is not None:
            errand_rows.sign_in(sign_in_as)
            for row in rows:
                if row.dataset == "errands":
                    own[row.name] = orders.Inputs(
                        errand_rows.path(row.path), lambda stage, row=row: [row.method, "", errand_rows.token]
                    )
                    runner.checks[row.name] = errand_rows.note
        runner.inputs = dict(own)
        if phases is not None:
            phases.sign_in(sign_in_as)
            runner.inputs = {**phases.inputs(rows, args.duration, WARMUP_SECONDS), **own}

        sampler = MemorySampler({name: s.pid for name, s in servers.items()}, SAMPLE_INTERVAL).start()
        # Every row warms up before any is measured, so "RSS after the warm-up" has seen every code path.
        for row in rows:
            runner.warm_up(row)
        sampler.mark_warm()
        results = measure_phase(runner, rows, phases)
        if phases is not None:
            # Again at the final size: the order rows, and the baselines they compare to, in this phase.
            again = [r for r in rows if r.name in phased_names]
            phases.grow_final()
            runner.inputs = {**phases.inputs(rows, args.duration, WARMUP_SECONDS), **own}
            for row in again:
                runner.warm_up(row)
            results += measure_phase(runner, again, phases)
        tracks = sampler.stop()
        sampler = None
    finally:
        if sampler is not None:
            sampler.stop()
    return results, tracks


def measure_phase(runner: Runner, rows: list[Row], phases: "orders.OrderPhases | None") -> list[RowResult]:
    """Measure each row; a row with a ratio target whose baseline is measured too, in pairs with it."""
    by_name = {row.name: row for row in rows}
    return [
        measure_row(
            runner, row, phases, beside=by_name.get(row.compare_to or "") if row.target_ratio else None
        )
        for row in rows
    ]


def measure_row(
    runner: Runner, row: Row, phases: "orders.OrderPhases | None", beside: Row | None = None
) -> RowResult:
    """Measure one row (``pairs`` times beside its baseline ``beside``, when given); in a scale run, label
    order rows (and their baselines) with the phase."""
    result = runner.measure(row) if beside is None else measure_pairs(runner, row, beside, runner.args.pairs)
    check = runner.checks.get(row.name)
    if check is not None:
        try:
            check(result)
        except Exception as exc:  # a check that cannot run must not hide the numbers measured
            result.problem = f"check after the run failed: {_one_line(exc)}"
    if phases is not None and (row.phased or any(r.compare_to == row.name for r in ROWS if r.phased)):
        result.phase = phases.phase
        if row.expect_conflicts:
            phases.check_take(result)
    return result


def measure_pairs(runner: Runner, row: Row, base: Row, pairs: int) -> RowResult:
    """Measure a row ``pairs`` times, each run between two runs of its baseline (B R B R ... B), and keep the
    median run: on a shared machine the same code's ratio moves by a tenth and more between runs a minute
    apart, and the baselines on either side of a run see the machine as the run does, even as it drifts."""
    log(f"measuring {row.name} ({pairs} x {runner.args.duration:g} s, each between runs of {base.name})")
    baselines, rows = [], []
    try:
        baselines.append(runner.run(base))
        for _ in range(pairs):
            rows.append(runner.run(row))
            baselines.append(runner.run(base))
    except WrkError as exc:
        return RowResult(row, error=f"a run beside {base.name} failed: {_one_line(exc)}")
    result = RowResult(row)
    keep_median_pair(result, baselines, rows)
    log("  ratio of each run: " + ", ".join(f"{r:.2f}" for r in result.pair_ratios))
    return result


def render(
    args, wrk: str | None, results: list[RowResult], tracks: list[Track], job_results: list[jobs.JobResult]
) -> tuple[str, dict, bool]:
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    threads = min(MAX_WRK_THREADS, args.connections)
    title = f"Sandan benchmarks, {started}"
    sections: list[list[str]] = []
    if results:
        assert wrk is not None
        header = [
            f"{wrk_version(wrk)}: {threads} threads, {args.connections} connections, {args.duration:g} s per "
            f"row after a {WARMUP_SECONDS} s warm-up",
            f"gunicorn: {WORKERS} sync workers per server; {os.cpu_count()} CPUs shared by servers, "
            "PostgreSQL, Redis, the fake WeChat server and wrk",
            "ratio = the row's req/s / req/s of the baseline row in 'compared to' (same run, same machine)",
        ]
        sections += [header, [results_table(results)]]
        if any(r.phase for r in results):
            sections.append([orders.growth_section(results, args.orders_sizes)])
        sections.append([memory_table(tracks, SAMPLE_INTERVAL)])
    if job_results:
        sections += [jobs.jobs_header(RESULTS_DIR.relative_to(REPO_ROOT)), [jobs.jobs_table(job_results)]]
    first, rest = (sections[0], sections[1:]) if sections else ([], [])
    text = "\n\n".join("\n".join(lines) for lines in [[title, *first], *rest])
    data = {
        "started": started,
        "config": {
            "duration_s": args.duration,
            "warmup_s": WARMUP_SECONDS,
            "connections": args.connections,
            "wrk_threads": threads,
            "gunicorn_workers": WORKERS,
            "cpus": os.cpu_count(),
            "wrk": wrk_version(wrk) if wrk else None,
            "quick": args.quick,
        },
        "rows": [result_json(r) for r in results],
        "memory": [track_json(t) for t in tracks],
        "job_rows": [jobs.job_result_json(r) for r in job_results],
    }
    all_ran = all(r.result is not None and not r.has_errors for r in results) and all(
        r.error is None for r in job_results
    )
    return text, data, all_ran


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_rows(ROWS)
    all_job_rows = jobs.job_rows(args.quick)
    if args.list:
        for row in ROWS:
            compared = f" (compared to {row.compare_to})" if row.compare_to else ""
            print(f"{row.name:20} {row.server:9} {row.method} {row.path}{compared}\n{'':20} {row.about}")
        for job_row in all_job_rows:
            compared = f" (compared to {job_row.compare_to})" if job_row.compare_to else ""
            print(f"{job_row.name:20} {'jobs':9} {job_row.kind}{compared}\n{'':20} {job_row.about}")
        return 0
    job_rows = jobs.select_job_rows(all_job_rows, args.only)
    try:
        rows = select_rows(ROWS, args.only)
    except ValueError:
        if not job_rows:
            names = ", ".join([r.name for r in ROWS] + [r.name for r in all_job_rows])
            log(f"bench: no row matches {', '.join(args.only)}; rows: {names}")
            return 2
        rows = []
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        text, data, all_ran = run(args, rows, job_rows)
    except (BenchSetupError, WrkError) as exc:
        log(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        log("bench: interrupted; servers stopped")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(text)
    (RESULTS_DIR / "latest.txt").write_text(text + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    log(f"written to {(RESULTS_DIR / 'latest.txt').relative_to(REPO_ROOT)}")
    if not all_ran:
        log("bench: some rows had errors (marked !)")
    return 0 if all_ran else 1
