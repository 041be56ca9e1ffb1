"""The job rows' pure parts: which rows exist and run, the table and JSON they print, the fake server's stats,
and the SLA clocks the sweep row lays out. No worker, database or Redis runs here."""

from datetime import UTC, datetime, timedelta

import pytest

from bench.jobs import (
    NEAR_SHARE,
    NOOP,
    NOTIFY,
    SWEEP,
    JobResult,
    JobRowError,
    Measure,
    attach_baselines,
    job_result_json,
    job_rows,
    jobs_table,
    select_job_rows,
    sends_from_stats,
    sweep_data,
    sweep_name,
    worker_env,
)

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
HORIZON = timedelta(minutes=3)


def by_name(quick: bool = False):
    return {r.name: r for r in job_rows(quick)}


def test_rows_and_sizes():
    full, quick = by_name(), by_name(quick=True)
    assert list(full) == ["rq-noop-1w", "rq-noop-2w", "notify-1w", "notify-2w", "sla-sweep-100k"]
    assert list(quick)[-1] == "sla-sweep-10k"
    assert full["sla-sweep-100k"].size == 100_000 and full["sla-sweep-100k"].kind == SWEEP
    assert full["notify-2w"].compare_to == "rq-noop-2w" and full["notify-2w"].workers == 2
    # A notify row and the no-op row it is divided by do the same number of jobs.
    for row in full.values():
        if row.kind == NOTIFY:
            assert row.size == full[row.compare_to].size and full[row.compare_to].kind == NOOP
    assert quick["notify-1w"].size < full["notify-1w"].size


def test_sweep_name():
    assert sweep_name(100_000) == "sla-sweep-100k"
    assert sweep_name(2500) == "sla-sweep-2500"


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        ([], ["rq-noop-1w", "rq-noop-2w", "notify-1w", "notify-2w", "sla-sweep-100k"]),
        (["sweep"], ["sla-sweep-100k"]),
        (["NOTIFY-2"], ["rq-noop-2w", "notify-2w"]),  # its rq-noop row comes along, in table order
        (["notify"], ["rq-noop-1w", "rq-noop-2w", "notify-1w", "notify-2w"]),
        (["noop-1w", "sweep"], ["rq-noop-1w", "sla-sweep-100k"]),
        (["login"], []),
    ],
)
def test_select(only, expected):
    assert [r.name for r in select_job_rows(job_rows(), only)] == expected


def noop_result(name: str, count: int, seconds: float) -> JobResult:
    return JobResult(by_name()[name], [Measure("jobs done", count, seconds)])


def test_rates_and_ratios():
    noop = noop_result("rq-noop-1w", 1000, 10.0)
    notify = JobResult(by_name()["notify-1w"], [Measure("notifications sent", 1000, 40.0)])
    failed = JobResult(by_name()["rq-noop-2w"], error="worker died")
    notify2 = JobResult(by_name()["notify-2w"], [Measure("notifications sent", 1000, 20.0)])
    attach_baselines([noop, notify, failed, notify2])
    assert noop.rate == pytest.approx(100.0) and noop.ratio is None
    assert notify.rate == pytest.approx(25.0)
    assert notify.baseline_rate == pytest.approx(100.0) and notify.ratio == pytest.approx(0.25)
    # A failed no-op row gives no ratio rather than a wrong one.
    assert notify2.baseline_rate is None and notify2.ratio is None
    sweep = JobResult(by_name()["sla-sweep-100k"], [Measure("sweep", 300, 0.03, rate=False)])
    assert sweep.rate is None and Measure("x", 5, 0.0).per_second is None


def test_table():
    noop = noop_result("rq-noop-1w", 1000, 15.0)
    notify = JobResult(
        by_name()["notify-1w"], [Measure("notifications sent", 1000, 40.0)], notes=["up in 2 s"]
    )
    failed = JobResult(by_name()["notify-2w"], error="stalled: 10 of 1,000 notifications")
    sweep = JobResult(
        by_name()["sla-sweep-100k"],
        [
            Measure("sweep, Redis flushed: jobs re-sent", 300, 0.0281, rate=False),
            Measure("sweep again (steady): jobs re-sent", 0, 0.0104, rate=False),
            Measure("full rebuild (no horizon): re-sent", 199_850, 12.34, rate=False),
        ],
    )
    results = [noop, notify, failed, sweep]
    attach_baselines(results)
    lines = jobs_table(results).splitlines()
    assert lines[0].split() == [
        "row",
        "workers",
        "measured",
        "count",
        "seconds",
        "per",
        "s",
        "compared",
        "to",
        "ratio",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["rq-noop-1w", "1", "jobs", "done", "1,000", "15.0", "66.7", "-", "-"]
    assert lines[3].split() == [
        "notify-1w",
        "1",
        "notifications",
        "sent",
        "1,000",
        "40.0",
        "25.0",
        "rq-noop-1w",
        "0.38x",
    ]
    assert lines[4].split() == ["notify-2w", "!", "2", "failed", "-", "-", "-", "rq-noop-2w", "-"]
    # The sweep: one line per measurement, the row's name on the first only; no rate.
    assert lines[5].split()[:2] == ["sla-sweep-100k", "-"] and lines[5].split()[-5:] == [
        "300",
        "0.028",
        "-",
        "-",
        "-",
    ]
    assert lines[6].startswith(" ") and lines[6].split()[-3:] == ["0", "0.010", "-"]
    assert lines[7].split()[-3:] == ["199,850", "12.3", "-"]
    assert lines[8:] == ["  notify-1w: up in 2 s", "! notify-2w: stalled: 10 of 1,000 notifications"]
    # Numbers line up on the right.
    assert len({line.index("0.028") + 5 for line in lines[5:6]} | {lines[6].index("0.010") + 5}) == 1


def test_json():
    noop = noop_result("rq-noop-2w", 100, 4.0)
    noop.details["workers_ready_s"] = 3.5
    data = job_result_json(noop)
    assert data["name"] == "rq-noop-2w" and data["workers"] == 2 and data["size"] == 1000
    assert data["per_second"] == pytest.approx(25.0) and data["ratio"] is None
    assert data["measures"] == [{"label": "jobs done", "count": 100, "seconds": 4.0, "per_second": 25.0}]
    assert data["workers_ready_s"] == 3.5
    assert job_result_json(JobResult(by_name()["sla-sweep-100k"]))["workers"] is None


def test_sends_from_stats():
    stats = {"calls": {"token": 1, "jscode2session": 40, "getuserphonenumber": 0, "subscribe_send": 1000}}
    assert sends_from_stats(stats) == 1000
    for bad in ({}, {"calls": {}}, {"calls": None}, {"calls": {"subscribe_send": "many"}}):
        with pytest.raises(JobRowError):
            sends_from_stats(bad)


def test_sweep_data_is_due_later_with_a_few_near():
    rows = list(sweep_data(clocks=2000, now=NOW, horizon=HORIZON))
    assert len(rows) == 2000
    near = round(2000 * NEAR_SHARE)
    in_flight = [m for _, messages in rows for m in messages if m["done_at"] is None]
    # Two card jobs per clock, less the yellow cards already raised on clocks whose red card is near.
    assert len(in_flight) == 2 * 2000 - (near - near // 2)
    assert sum(m["run_at"] <= NOW + HORIZON for m in in_flight) == near
    for clock, messages in rows:
        # Nothing is due yet: the sweep must find jobs to re-send, never a card to raise itself.
        assert clock["state"] == "running" and clock["due_at"] > NOW
        assert clock["warned_at"] is not None or clock["warn_at"] > NOW
        assert [m["run_at"] for m in messages] == [clock["warn_at"], clock["due_at"]]
        assert all(m["sent_at"] is not None for m in messages)
    due = sorted(c["due_at"] for c, _ in rows)
    assert due[-1] - NOW > timedelta(days=20)  # spread over the weeks ahead
    assert rows == list(sweep_data(clocks=2000, now=NOW, horizon=HORIZON))  # the same every run


def test_worker_env_pins_worker_settings():
    env = worker_env(
        {"PATH": "/bin", "SANDAN_WORKER_TTL": "20", "SANDAN_JOB_RETRY_INTERVALS": "1,1", "DATABASE_URL": "x"}
    )
    assert env == {"PATH": "/bin", "DATABASE_URL": "x", "SANDAN_WORKER_IMPORTS": "bench.jobs"}
