"""The printed table, the memory verdicts, and the JSON form of the same results."""

from dataclasses import dataclass, field
from itertools import pairwise

from bench.procmem import Track
from bench.rows import APP, Row
from bench.wrk import WrkResult

MEMORY_LIMIT_MB = 150
GROWTH_LIMIT_MB = 10
MEMORY_GOAL = "a web worker stays under 150 MB and does not grow over a run"


@dataclass
class RowResult:
    row: Row
    result: WrkResult | None = None
    error: str | None = None  # why the row could not be measured at all
    baseline_rps: float | None = None
    note: str | None = None
    phase: str | None = None  # the scale phase of an order row ("10k", "1M"), or of its baseline
    problem: str | None = None  # measured, but a check after the run failed (marks the row !)
    # A row measured between runs of its baseline: every run's ratio (`result` and `baseline_rps` are the
    # median run's), and every baseline run's req/s.
    pair_ratios: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.row.name + (f" @{self.phase}" if self.phase else "")

    @property
    def failures(self) -> int:
        """Failed requests; a 409 is a right answer in a row that expects conflicts."""
        if self.result is None:
            return 0
        conflicts = (self.result.statuses or {}).get("409", 0) if self.row.expect_conflicts else 0
        return self.result.failed - conflicts

    @property
    def ratio(self) -> float | None:
        if self.result is None or not self.baseline_rps:
            return None
        return self.result.requests_per_sec / self.baseline_rps

    @property
    def has_errors(self) -> bool:
        if self.error is not None or self.problem is not None:
            return True
        return self.result is not None and (self.result.requests == 0 or self.failures > 0)


def keep_median_pair(result: RowResult, baselines: list[WrkResult], rows: list[WrkResult]) -> None:
    """Of row runs each measured between two baseline runs (``baselines`` has one run more than ``rows``:
    B R B R B ...), keep in ``result`` the run whose ratio is the median (the upper middle one of an even
    number), and every run's ratio in measuring order. A run's ratio is to the mean of the baselines on
    either side of it, so a machine speeding up or slowing down through the pair moves both alike."""
    assert len(baselines) == len(rows) + 1
    beside = [(before.requests_per_sec + after.requests_per_sec) / 2 for before, after in pairwise(baselines)]
    ratios = [row.requests_per_sec / base if base else 0.0 for base, row in zip(beside, rows, strict=True)]
    median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
    result.result, result.baseline_rps = rows[median], beside[median]
    result.pair_ratios = ratios
    result.baseline_runs = [b.requests_per_sec for b in baselines]


def _mb(kb: int | None) -> float | None:
    return None if kb is None else kb / 1024


def memory_verdict(track: Track) -> str:
    """PASS/FAIL against MEMORY_GOAL for an app worker; masters and baseline workers are not judged."""
    if track.server != APP or track.role != "worker":
        return ""
    if track.warm_kb is None:
        return "FAIL (started mid-run: a worker was replaced)"
    if not track.alive:
        return "FAIL (exited during the run)"
    reasons = []
    if track.hwm_kb / 1024 >= MEMORY_LIMIT_MB:
        reasons.append(f"peak >= {MEMORY_LIMIT_MB} MB")
    if track.growth_kb is not None and track.growth_kb / 1024 > GROWTH_LIMIT_MB:
        reasons.append(f"grew > {GROWTH_LIMIT_MB} MB")
    return "FAIL (" + ", ".join(reasons) + ")" if reasons else "PASS"


def format_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def results_table(results: list[RowResult]) -> str:
    headers = ["row", "server", "req/s", "p50 ms", "p99 ms", "non-2xx", "sock err", "compared to", "ratio"]
    body = []
    for r in results:
        name = r.label + (" !" if r.has_errors else "")
        if r.result is None:
            body.append([name, r.row.server, "failed", "-", "-", "-", "-", r.row.compare_to or "-", "-"])
            continue
        w = r.result
        body.append(
            [
                name,
                r.row.server,
                _num(w.requests_per_sec, 1),
                _num(w.p50_ms),
                _num(w.p99_ms),
                str(w.non_2xx),
                str(w.socket_error_count),
                r.row.compare_to or "-",
                "-" if r.ratio is None else f"{r.ratio:.2f}x",
            ]
        )
    table = format_table(headers, body, right={2, 3, 4, 5, 6, 8})
    notes = []
    for r in results:
        if r.error:
            notes.append(f"! {r.label}: not measured: {r.error}")
        elif r.result is not None and r.result.requests == 0:
            notes.append(f"! {r.label}: no request completed in {r.result.duration_s:g} s")
        elif r.problem:
            notes.append(f"! {r.label}: {r.problem}")
        elif r.has_errors:
            assert r.result is not None
            problems = [f"{r.result.non_2xx:,} responses >= 400"] if r.result.non_2xx else []
            problems += [f"{n:,} socket {kind} errors" for kind, n in r.result.socket_errors.items() if n]
            notes.append(
                f"! {r.label}: {' and '.join(problems)} in {r.result.requests:,} requests "
                "(req/s counts failures too)"
            )
        if r.note:
            notes.append(f"  {r.label}: {r.note}")
        if len(r.pair_ratios) > 1:
            notes.append(
                f"  {r.label}: ratio in each of {len(r.pair_ratios)} runs, each between two runs of "
                f"{r.row.compare_to}: "
                + ", ".join(f"{x:.2f}" for x in r.pair_ratios)
                + " (the median run is shown; "
                + r.row.compare_to
                + " req/s in turn: "
                + ", ".join(f"{x:,.0f}" for x in r.baseline_runs)
                + ")"
            )
    return table + ("\n" + "\n".join(notes) if notes else "")


def memory_table(tracks: list[Track], interval: float) -> str:
    headers = ["server", "process", "pid", "start MB", "warm MB", "end MB", "peak MB", "growth MB", "goal"]
    body = [
        [
            t.server,
            t.role + ("" if t.alive else " (gone)"),
            str(t.pid),
            _num(_mb(t.start_kb), 1),
            _num(_mb(t.warm_kb), 1),
            _num(_mb(t.last_kb), 1),
            _num(_mb(t.hwm_kb), 1),
            "-" if t.growth_kb is None else f"{t.growth_kb / 1024:+.1f}",
            memory_verdict(t) or "-",
        ]
        for t in tracks
    ]
    intro = [
        f"Memory goal: {MEMORY_GOAL}.",
        f"PASS per app worker: peak RSS (VmHWM) < {MEMORY_LIMIT_MB} MB and growth <= {GROWTH_LIMIT_MB} MB,",
        f"where growth = RSS at the end - RSS after the warm-up (sampled every {interval:g} s from /proc).",
    ]
    return "\n".join(intro) + "\n\n" + format_table(headers, body, right={2, 3, 4, 5, 6, 7})


def result_json(r: RowResult) -> dict:
    w = r.result
    return {
        "name": r.row.name,
        "phase": r.phase,
        "problem": r.problem,
        "server": r.row.server,
        "method": r.row.method,
        "path": r.row.path,
        "about": r.row.about,
        "compared_to": r.row.compare_to,
        "error": r.error,
        "note": r.note,
        "requests": w.requests if w else None,
        "duration_s": w.duration_s if w else None,
        "requests_per_sec": w.requests_per_sec if w else None,
        "latency_avg_ms": w.latency_avg_ms if w else None,
        "latency_max_ms": w.latency_max_ms if w else None,
        "percentiles_ms": {f"p{p:g}": v for p, v in w.percentiles_ms.items()} if w else None,
        "non_2xx": w.non_2xx if w else None,
        "socket_errors": w.socket_errors if w else None,
        "codes_exhausted": w.codes_exhausted if w else None,
        "statuses": w.statuses if w else None,
        "baseline_requests_per_sec": r.baseline_rps,
        "ratio": r.ratio,
        "pair_ratios": r.pair_ratios,
        "baseline_runs_per_sec": r.baseline_runs,
    }


def track_json(t: Track) -> dict:
    return {
        "server": t.server,
        "role": t.role,
        "pid": t.pid,
        "alive_at_end": t.alive,
        "start_kb": t.start_kb,
        "warm_kb": t.warm_kb,
        "end_kb": t.last_kb,
        "peak_kb": t.hwm_kb,
        "growth_kb": t.growth_kb,
        "verdict": memory_verdict(t) or None,
    }
