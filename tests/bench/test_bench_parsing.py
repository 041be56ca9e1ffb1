"""The benchmark harness's readers: wrk's report and /proc memory. Pure and fast; no servers run.

The wrk samples are real wrk 4.1 output: the harness's own rows, plus a toy server that answers slowly,
drops connections, or hangs, to get the units and error lines a healthy run never prints.
"""

import os
from pathlib import Path

import pytest

from bench.procmem import MemorySampler, Track, children_of, parse_stat_ppid, parse_status, read_mem
from bench.report import RowResult, memory_verdict, results_table
from bench.rows import APP, BASELINE, ROWS, Row, check_rows, select_rows
from bench.wrk import WrkError, parse_wrk_output, time_to_ms

SAMPLES = Path(__file__).parent / "wrk_samples"
PROC_SAMPLES = Path(__file__).parent / "proc_samples"


def wrk_sample(name: str):
    return parse_wrk_output((SAMPLES / name).read_text())


# --- wrk ---------------------------------------------------------------------------------------------


def test_healthy_run():
    r = wrk_sample("hello.txt")
    assert r.requests == 14338
    assert r.duration_s == pytest.approx(2.0)
    assert r.requests_per_sec == pytest.approx(7164.38)
    assert r.latency_avg_ms == pytest.approx(2.18)
    assert r.latency_max_ms == pytest.approx(8.96)
    assert r.percentiles_ms == pytest.approx({50.0: 2.11, 75.0: 2.24, 90.0: 2.40, 99.0: 3.95})
    assert (r.p50_ms, r.p99_ms) == (pytest.approx(2.11), pytest.approx(3.95))
    assert r.bytes_read == round(2.23 * 1024**2)
    assert r.non_2xx == 0
    assert r.socket_error_count == 0
    assert r.codes_exhausted is None
    assert r.ok


def test_non_2xx_and_exhausted_codes_are_counted():
    r = wrk_sample("login_exhausted.txt")
    assert r.requests == 595
    assert r.non_2xx == 556
    assert r.codes_exhausted == 572
    assert r.p99_ms == pytest.approx(153.91)
    assert r.bytes_read == round(168.43 * 1024)
    assert r.failed == 556
    assert not r.ok


def test_latencies_in_seconds_become_milliseconds():
    r = wrk_sample("seconds.txt")
    assert r.p50_ms == pytest.approx(1200.0)
    assert r.p99_ms == pytest.approx(1210.0)
    assert r.latency_avg_ms == pytest.approx(1200.0)
    assert r.duration_s == pytest.approx(3.01)


def test_socket_errors_and_microseconds():
    r = wrk_sample("socket_errors.txt")
    assert r.socket_errors == {"connect": 0, "read": 5604, "write": 0, "timeout": 0}
    assert r.p50_ms == pytest.approx(0.712)
    assert r.percentiles_ms[75.0] == pytest.approx(0.93)
    assert r.failed == 5604
    assert not r.ok


def test_a_run_with_no_completed_request_has_no_latency():
    r = wrk_sample("no_requests.txt")
    assert r.requests == 0
    assert r.requests_per_sec == 0
    assert r.p50_ms is None and r.p99_ms is None and r.latency_avg_ms is None
    assert not r.ok


def test_output_without_a_report_is_an_error():
    with pytest.raises(WrkError, match="unable to connect"):
        parse_wrk_output((SAMPLES / "refused.txt").read_text())


@pytest.mark.parametrize(
    ("value", "unit", "ms"),
    [("812.00", "us", 0.812), ("1.20", "ms", 1.2), ("2.50", "s", 2500.0), ("1.50", "m", 90_000.0)],
)
def test_time_units(value, unit, ms):
    assert time_to_ms(value, unit) == pytest.approx(ms)


def test_unknown_time_unit():
    with pytest.raises(WrkError):
        time_to_ms("1", "ns")


# --- /proc ---------------------------------------------------------------------------------------------


def test_parse_status_reads_rss_and_peak():
    mem = parse_status((PROC_SAMPLES / "python_status.txt").read_text())
    assert mem.rss_kb == 10840
    assert mem.hwm_kb == 41556


def test_kernel_threads_have_no_memory():
    with pytest.raises(ValueError):
        parse_status((PROC_SAMPLES / "kthread_status.txt").read_text())


@pytest.mark.parametrize(
    ("stat", "ppid"),
    [
        ("15407 (cat) R 15401 15401 8780 0 -1 4194304 101 0", 15401),
        ("31735 (gunicorn: worker [backend.wsgi:app]) S 31732 31732 8780 0 -1", 31732),
        # A command name may hold ") " itself; only the last ")" ends it.
        ("42 (evil) S 1 (x) S 7 7 0) S 99 42 42 0", 99),
    ],
)
def test_parse_stat_ppid(stat, ppid):
    assert parse_stat_ppid(stat) == ppid


def test_read_mem_of_this_process_and_of_a_gone_one(tmp_path):
    mem = read_mem(os.getpid())
    assert mem is not None and 0 < mem.rss_kb <= mem.hwm_kb
    assert read_mem(12345, proc=tmp_path) is None


def fake_proc(root: Path, pid: int, ppid: int, rss_kb: int, hwm_kb: int) -> None:
    entry = root / str(pid)
    entry.mkdir(exist_ok=True)
    (entry / "stat").write_text(f"{pid} (python3) S {ppid} {ppid} 1 0 -1 4194560\n")
    (entry / "status").write_text(
        f"Name:\tpython3\nPid:\t{pid}\nVmHWM:\t{hwm_kb:>8} kB\nVmRSS:\t{rss_kb:>8} kB\n"
    )


def test_children_of(tmp_path):
    fake_proc(tmp_path, 100, 1, 1000, 1000)
    fake_proc(tmp_path, 101, 100, 2000, 2000)
    fake_proc(tmp_path, 102, 100, 2000, 2000)
    fake_proc(tmp_path, 200, 101, 2000, 2000)  # a grandchild is not a worker
    (tmp_path / "self").mkdir()
    assert children_of(100, proc=tmp_path) == [101, 102]


def test_sampler_tracks_growth_from_the_warm_reading(tmp_path):
    fake_proc(tmp_path, 100, 1, 20_000, 20_000)
    fake_proc(tmp_path, 101, 100, 90_000, 90_000)
    fake_proc(tmp_path, 102, 100, 90_000, 90_000)
    sampler = MemorySampler({APP: 100}, proc=tmp_path)
    sampler.sample()
    fake_proc(tmp_path, 101, 100, 95_000, 96_000)
    fake_proc(tmp_path, 102, 100, 95_000, 96_000)
    sampler.mark_warm()
    fake_proc(tmp_path, 101, 100, 97_000, 97_500)
    fake_proc(tmp_path, 102, 100, 120_000, 121_000)
    sampler.sample()
    (tmp_path / "102" / "status").unlink()  # it exits; gunicorn boots a replacement
    fake_proc(tmp_path, 103, 100, 90_000, 90_000)
    tracks = {t.pid: t for t in sampler.stop()}

    assert [t.role for t in tracks.values()] == ["master", "worker", "worker", "worker"]
    steady, leaky, fresh = tracks[101], tracks[102], tracks[103]
    assert (steady.start_kb, steady.warm_kb, steady.last_kb, steady.hwm_kb) == (
        90_000,
        95_000,
        97_000,
        97_500,
    )
    assert steady.growth_kb == 2_000 and steady.alive
    assert leaky.growth_kb == 25_000 and not leaky.alive
    assert fresh.warm_kb is None and fresh.growth_kb is None


# --- verdicts and the table -----------------------------------------------------------------------------


def worker(**kw) -> Track:
    fields = {"server": APP, "role": "worker", "pid": 1, "start_kb": 90_000, "last_kb": 100_000}
    fields |= {"hwm_kb": 100_000, "warm_kb": 99_000}
    return Track(**(fields | kw))


def test_memory_verdicts():
    assert memory_verdict(worker()) == "PASS"
    assert memory_verdict(worker(hwm_kb=150 * 1024)).startswith("FAIL (peak")
    assert memory_verdict(worker(last_kb=99_000 + 10 * 1024 + 1)).startswith("FAIL (grew")
    assert memory_verdict(worker(last_kb=99_000 + 10 * 1024)) == "PASS"
    assert memory_verdict(worker(warm_kb=None)).startswith("FAIL (started mid-run")
    assert memory_verdict(worker(alive=False)).startswith("FAIL (exited")
    assert memory_verdict(worker(role="master")) == ""
    assert memory_verdict(worker(server=BASELINE)) == ""


def test_table_marks_rows_with_errors_and_shows_ratio():
    base = RowResult(Row("base", BASELINE, "GET", "/hello"), wrk_sample("hello.txt"))
    bad = RowResult(Row("login", APP, "POST", "/x", compare_to="base"), wrk_sample("login_exhausted.txt"))
    bad.baseline_rps = base.result.requests_per_sec
    text = results_table([base, bad])
    lines = text.splitlines()
    assert lines[2].startswith("base ") and "7,164.4" in lines[2]
    assert lines[3].startswith("login !") and " 556 " in lines[3] and "0.04x" in lines[3]
    assert "! login: 556 responses >= 400 in 595 requests" in text


def test_rows_are_consistent_and_only_pulls_in_baselines():
    check_rows(ROWS)
    names = [r.name for r in select_rows(ROWS, ["app-login"])]
    assert names == ["baseline-insert", "app-login"]
    with pytest.raises(ValueError):
        select_rows(ROWS, ["no-such-row"])


def test_table_shows_a_row_that_could_not_be_measured():
    failed = RowResult(Row("me", APP, "GET", "/me", compare_to="base"), error="wrk exited with 1: refused")
    text = results_table([failed])
    assert text.splitlines()[2].split()[:4] == ["me", "!", "app", "failed"]
    assert "! me: not measured: wrk exited with 1: refused" in text
