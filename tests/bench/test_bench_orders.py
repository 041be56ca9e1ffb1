"""The order rows' pure helpers: scale phases' labels and sizes, generated values, cursors, take statuses.
No database and no servers: the generation itself runs only in the benchmark."""

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.catalog import questions
from backend.catalog.service import shipped_catalog
from bench import harness, orders, scale
from bench.report import RowResult, keep_median_pair, results_table
from bench.rows import ROWS, check_rows, select_rows
from bench.wrk import WrkResult, parse_wrk_output
from tests.bench.test_bench_parsing import SAMPLES


def test_phase_labels():
    assert orders.short_count(10_000) == "10k"
    assert orders.short_count(1_000_000) == "1M"
    assert orders.short_count(100_000) == "100k"
    assert orders.short_count(2_500) == "2.5k"
    assert orders.short_count(999) == "999"


def test_sizes_are_two_growing_counts():
    assert orders.parse_sizes("10000,1_000_000") == (10_000, 1_000_000)
    for bad in ("10000", "1000,100", "a,b", "0,10", "1,2,3"):
        with pytest.raises(ValueError):
            orders.parse_sizes(bad)


def test_growth_is_final_over_first():
    assert orders.growth(100.0, 50.0) == 0.5
    assert orders.growth(None, 50.0) is None
    assert orders.growth(0.0, 50.0) is None


def test_placing_residents_live_off_the_measured_board_and_spread_over_the_rest():
    world = scale.World(shape=scale.Shape(), now=datetime(2026, 11, 1, tzinfo=UTC))
    world.community_ids = [1, 2, 3]
    world.grid_community = {10: 1, 11: 1, 20: 2, 30: 3}
    world.resident_grid = [[10, 20, 11, 30][n % 4] for n in range(400)]
    placers = scale.placing_residents(world, 100)
    assert len(placers) == len(set(placers)) == 100
    assert {world.resident_grid[n] for n in placers} == {20, 30}
    assert max(placers) > 350  # spread over all of them, not the first hundred
    assert len(scale.placing_residents(world, 1000)) == 200  # no more than live elsewhere


def test_newest_order_gets_the_highest_id():
    assert scale.order_id_for(0, 1_000_000) == 1_000_000
    assert scale.order_id_for(999_999, 1_000_000) == 1
    with pytest.raises(ValueError):
        scale.order_id_for(1_000_000, 1_000_000)


def test_copy_text_format():
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    line = scale.copy_line([1, None, True, False, at, "a\tb\\c\nd", {"k": "值"}])
    assert line == '1\t\\N\tt\tf\t2026-11-25T08:00:00+00:00\ta\\tb\\\\c\\nd\t{"k": "值"}\n'


def test_public_ids_look_like_the_apps():
    ids = {scale.public_id("od") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 23 and i.startswith("od_") and i[3:].isalnum() and i[3:].islower() for i in ids)


def test_board_cursor_decodes_as_the_view_reads_it():
    due = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    cursor = scale.encode_board_cursor(2, due, 12345)
    rank, text, order_id = json.loads(base64.urlsafe_b64decode(cursor + "=="))
    assert (rank, order_id) == (2, 12345)
    assert datetime.fromisoformat(text) == due and text.endswith("+00:00")


def test_generated_answers_pass_every_shipped_category():
    for category in shipped_catalog():
        answers = scale.answers_for(category.get("questions", []))
        _, errors = questions.check_answers(category.get("questions", []), answers)
        assert errors == {}, category["code"]


def test_placement_body_answers_its_category():
    category = next(c for c in shipped_catalog() if c["code"] == orders.PLACE_BODY["category"])
    _, errors = questions.check_answers(category["questions"], orders.PLACE_BODY["answers"])
    assert errors == {}


def test_weighted_pick_in_sql():
    sql = scale.pick_sql({"a": 1, "b": 3}, "r")
    assert sql == "CASE WHEN r < 0.25 THEN 'a' ELSE 'b' END"
    assert scale.pick_sql({5: 1, 4: 1}, "x") == "CASE WHEN x < 0.5 THEN 5 ELSE 4 END"


def test_take_script_statuses_are_parsed():
    text = (SAMPLES / "hello.txt").read_text() + "bench: status 200=38 409=266 other=0 exhausted=0\n"
    result = parse_wrk_output(text)
    assert result.statuses == {"200": 38, "409": 266, "other": 0, "exhausted": 0}
    assert parse_wrk_output((SAMPLES / "hello.txt").read_text()).statuses is None


def _result(non_2xx: int, statuses: dict | None) -> WrkResult:
    return WrkResult(
        requests=304, duration_s=3, requests_per_sec=100, bytes_read=1, latency_avg_ms=1, latency_max_ms=2,
        non_2xx=non_2xx, statuses=statuses,
    )  # fmt: skip


def test_conflicts_are_right_answers_only_where_expected():
    take = next(r for r in ROWS if r.expect_conflicts)
    board = next(r for r in ROWS if r.name == "orders-board-first")
    assert not RowResult(take, _result(266, {"200": 38, "409": 266, "other": 0})).has_errors
    assert RowResult(take, _result(270, {"200": 34, "409": 266, "other": 4})).has_errors
    assert RowResult(board, _result(266, None)).has_errors
    assert RowResult(take, _result(266, {"200": 38, "409": 266}), problem="taken twice").has_errors


def test_order_rows_and_their_targets():
    check_rows(ROWS)
    selected = {r.name for r in select_rows(ROWS, ["orders"])}
    assert {"orders-place", "baseline-insert", "baseline-select20", "orders-take-contention"} <= selected
    by_name = {r.name: r for r in ROWS}
    assert orders.target_text(by_name["orders-place"]) == ">= 0.80x baseline-insert"
    assert orders.target_text(by_name["orders-recommend"]) == "p99 < 20 ms"
    assert by_name["orders-recommend"].connections == 2
    assert by_name["orders-place"].script == "orders_place.lua"


def test_growth_section_pairs_the_phases():
    place = next(r for r in ROWS if r.name == "orders-place")
    base = next(r for r in ROWS if r.name == "baseline-insert")
    results = []
    for phase, rps, base_rps in (("10k", 800.0, 1000.0), ("1M", 760.0, 1000.0)):
        row = RowResult(place, _result(0, None), baseline_rps=base_rps, phase=phase)
        row.result.requests_per_sec = rps
        results += [row, RowResult(base, _result(0, None), phase=phase)]
    text = orders.growth_section(results, (10_000, 1_000_000))
    line = next(line for line in text.splitlines() if line.startswith("orders-place"))
    assert "0.95x" in line and "0.80x" in line and "0.76x" in line and line.endswith("yes/NO")


def _rate(rps: float) -> WrkResult:
    result = _result(0, None)
    result.requests_per_sec = rps
    return result


def test_a_ratio_row_keeps_its_median_run_against_the_baselines_around_it():
    place = next(r for r in ROWS if r.name == "orders-place")
    row = RowResult(place, _rate(1.0), phase="10k")
    # B R B R B R B: each run against the mean of the baselines on either side, 1000, 1200, 1100 and
    # 1100 req/s giving 1100, 1150 and 1100; ratios 0.90, 0.70, 0.80.
    baselines = [_rate(1000.0), _rate(1200.0), _rate(1100.0), _rate(1100.0)]
    rows = [_rate(990.0), _rate(805.0), _rate(880.0)]
    keep_median_pair(row, baselines, rows)
    assert row.pair_ratios == pytest.approx([0.9, 0.7, 0.8])
    assert row.result is rows[2] and row.baseline_rps == 1100.0
    assert row.baseline_runs == [1000.0, 1200.0, 1100.0, 1100.0]
    # Baselines that served nothing give 0, not a crash.
    keep_median_pair(row, [_rate(1000.0), _rate(0.0), _rate(0.0)], [_rate(700.0), _rate(5.0)])
    assert row.pair_ratios == [1.4, 0.0]
    # An even count keeps the upper middle one.
    assert row.result.requests_per_sec == 700.0


def test_the_table_says_each_runs_ratio_and_the_baselines_around_it():
    place = next(r for r in ROWS if r.name == "orders-place")
    row = RowResult(place, _rate(1.0), phase="1M")
    keep_median_pair(row, [_rate(1000.0), _rate(1000.0), _rate(1000.0)], [_rate(810.0), _rate(790.0)])
    text = results_table([row])
    assert "0.81x" in text
    assert (
        "orders-place @1M: ratio in each of 2 runs, each between two runs of baseline-insert: 0.81, 0.79 "
        "(the median run is shown; baseline-insert req/s in turn: 1,000, 1,000, 1,000)"
    ) in text


def test_each_run_of_a_ratio_row_sits_between_two_runs_of_its_baseline():
    place = next(r for r in ROWS if r.name == "orders-place")
    base = next(r for r in ROWS if r.name == "baseline-insert")
    served = iter([1000.0, 760.0, 1100.0, 790.0, 900.0, 800.0, 1000.0])
    order = []

    class Runner:
        args = type("Args", (), {"duration": 10})

        def run(self, row):
            order.append(row.name)
            return _rate(next(served))

    result = harness.measure_pairs(Runner(), place, base, 3)
    assert order == ["baseline-insert", "orders-place"] * 3 + ["baseline-insert"]
    assert result.pair_ratios == pytest.approx([760 / 1050, 790 / 1000, 800 / 950])
    assert result.result.requests_per_sec == 790.0 and result.baseline_rps == 1000.0
