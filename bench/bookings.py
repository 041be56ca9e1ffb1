"""The booking-under-contention row: a small street of residents, a street-level service point, fresh weekly
slots for every wrk run, and the check afterwards that no occurrence was overbooked.

Every wrk run (warm-up and measurement) gets slots of its own, so its occurrences start empty: each is
booked by ``BOOKERS`` residents (``bench/lua/appointments_book.lua``), ``CAPACITY`` of whom can get a
place (201) while the rest are refused (409 slot_full). Occurrence rows are written by the app itself, on
each occurrence's first booking, exactly as in production.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from bench import scale
from bench.report import RowResult

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
BOOKERS = 24  # residents signed in; every one of them books every occurrence once
CAPACITY = 8  # places per occurrence: a third of the requests get one
DAYS_AHEAD = 90  # the point's booking window (the most the app allows)
# Sizing the occurrences handed to wrk: requests at most this fast (the take row uses the same ceiling).
RATE_CEILING = 1500
ERRAND_TYPE = "medicine_purchase"
BOOKER_OPENID = "bench-booker-{n}"
BODY_NOTE = "需要帮忙代购降压药"


def bookable_days(today: date, holidays: set[date], weekday: int, days_ahead: int = DAYS_AHEAD) -> list[date]:
    """The dates a weekly slot on ISO ``weekday`` can be booked for, from tomorrow to the window's end,
    holidays left out (today is skipped: its slots may have started)."""
    last = today + timedelta(days=days_ahead - 1)
    first = today + timedelta(days=1)
    first += timedelta(days=(weekday - first.isoweekday()) % 7)
    out = []
    day = first
    while day <= last:
        if day not in holidays:
            out.append(day)
        day += timedelta(days=7)
    return out


def slot_start(k: int) -> time:
    """The start of the k-th bench slot: spread over 08:00–17:59, each 30 minutes long."""
    minutes = 8 * 60 + (k * 7) % 600
    return time(minutes // 60, minutes % 60)


def slot_plan(today: date, holidays: set[date], wanted: int) -> list[tuple[int, time, list[date]]]:
    """Enough weekly slots (weekday, start, their bookable dates) for ``wanted`` occurrences."""
    plan: list[tuple[int, time, list[date]]] = []
    total, k = 0, 0
    while total < wanted:
        weekday = k % 7 + 1
        days = bookable_days(today, holidays, weekday)
        if days:
            plan.append((weekday, slot_start(k), days))
            total += len(days)
        k += 1
        if k > 7 * 1000:
            raise RuntimeError("no bookable day in the window")
    return plan


def occurrences_needed(seconds: int, bookers: int = BOOKERS, rate: int = RATE_CEILING) -> int:
    """Occurrences a run of ``seconds`` may reach at ``rate`` requests/s, every booker once per occurrence."""
    return math.ceil(rate * (seconds + 2) / bookers) + 10


def check_problems(outcome: dict[str, int], created: int, in_flight: int) -> list[str]:
    """What is wrong after a run: overbooking, a counter that disagrees with the bookings, or a number of
    bookings the 201s cannot explain (requests in flight when wrk stopped may still commit)."""
    problems = []
    if outcome["overbooked"]:
        problems.append(f"{outcome['overbooked']:,} occurrences hold more bookings than their capacity")
    if outcome["miscounted"]:
        problems.append(f"{outcome['miscounted']:,} occurrences' booked differs from their active bookings")
    if not created <= outcome["bookings"] <= created + in_flight:
        problems.append(f"{outcome['bookings']:,} bookings in the database but wrk saw {created:,} 201s")
    return problems


@dataclass
class BookingWorld:
    street_id: int = 0
    point_id: int = 0
    point_public_id: str = ""
    resident_ids: list[int] = field(default_factory=list)
    holidays: set[date] = field(default_factory=set)


class BookingRow:
    """Data, tokens, per-run occurrences and the after-run check of ``appointments-book-contention``."""

    def __init__(self, dsn: str, work: Path, connections: int, log: Callable[[str], None]):
        self.dsn = dsn
        self.connections = connections
        self.work = work
        self.log = log
        self.world = BookingWorld()
        self.tokens: list[str] = []
        self.slot_ids: dict[str, list[int]] = {}  # stage -> slots created for that run
        self.runs = 0

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn)

    def load(self) -> None:
        """A street, one community of one grid, BOOKERS residents, one street-level point."""
        now = datetime.now(UTC).replace(microsecond=0)
        since = now - timedelta(days=365)
        w = self.world
        with self._connect() as conn:
            w.street_id = conn.execute(
                "INSERT INTO streets (name, public_id, created_at) VALUES (%s, %s, %s) RETURNING id",
                ("预约街道", scale.public_id("st"), since),
            ).fetchone()[0]
            community = conn.execute(
                "INSERT INTO communities (street_id, name, public_id, created_at) VALUES (%s, %s, %s, %s) "
                "RETURNING id",
                (w.street_id, "预约社区", scale.public_id("cm"), since),
            ).fetchone()[0]
            grid = conn.execute(
                "INSERT INTO grids (community_id, name, public_id, created_at) VALUES (%s, %s, %s, %s) "
                "RETURNING id",
                (community, "预约网格", scale.public_id("gd"), since),
            ).fetchone()[0]
            for n in range(BOOKERS):
                uid = conn.execute(
                    "INSERT INTO users (openid, nickname, real_name, is_active, public_id, created_at) "
                    "VALUES (%s, %s, '', true, %s, %s) RETURNING id",
                    (BOOKER_OPENID.format(n=n), f"booker{n}", scale.public_id("u"), since),
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO role_memberships (user_id, role, scope_type, scope_id, public_id, "
                    "created_at) VALUES (%s, 'resident', 'grid', %s, %s, %s)",
                    (uid, grid, scale.public_id("rm"), since),
                )
                w.resident_ids.append(uid)
            w.point_public_id = scale.public_id("sp")
            w.point_id = conn.execute(
                "INSERT INTO service_points (street_id, community_id, name, address, description, "
                "errand_types, booking_days_ahead, active, updated_at, public_id, created_at) "
                "VALUES (%s, NULL, %s, %s, '', %s, %s, true, %s, %s, %s) RETURNING id",
                (
                    w.street_id,
                    "街道党群服务中心代办窗口",
                    "幸福街道1号",
                    f'["{ERRAND_TYPE}", "subsistence_allowance"]',
                    DAYS_AHEAD,
                    since,
                    w.point_public_id,
                    since,
                ),
            ).fetchone()[0]
            w.holidays = {d for (d,) in conn.execute("SELECT date FROM calendar_days WHERE kind = 'holiday'")}

    def sign_in(self, sign_in_as: Callable[[str], str]) -> None:
        self.tokens = [sign_in_as(BOOKER_OPENID.format(n=n)) for n in range(BOOKERS)]

    def _file(self, name: str, lines: list[str]) -> str:
        path = self.work / name
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def new_targets(self, stage: str, seconds: int) -> list[str]:
        """Fresh slots for one wrk run; returns its occurrences as "slot public id<TAB>date" lines."""
        today = datetime.now(LOCAL_TZ).date()
        plan = slot_plan(today, self.world.holidays, occurrences_needed(seconds))
        now = datetime.now(UTC)
        lines, ids = [], []
        with self._connect() as conn:
            for weekday, start, days in plan:
                end = (datetime.combine(today, start) + timedelta(minutes=30)).time()
                public = scale.public_id("sl")
                ids.append(
                    conn.execute(
                        "INSERT INTO opening_slots (point_id, weekday, start_time, end_time, capacity, "
                        "active, public_id, created_at) VALUES (%s, %s, %s, %s, %s, true, %s, %s) "
                        "RETURNING id",
                        (self.world.point_id, weekday, start, end, CAPACITY, public, now),
                    ).fetchone()[0]
                )
                lines += [f"{public}\t{d.isoformat()}" for d in days]
        # Slot by slot would put one thread's consecutive occurrences on one slot; interleave by date.
        lines.sort(key=lambda line: (line.split("\t")[1], line))
        self.slot_ids[stage] = ids
        return lines

    def args(self, duration: int, warmup: int, threads: int) -> Callable[[str], list[str]]:
        def args(stage: str) -> list[str]:
            self.runs += 1
            seconds = warmup if stage == "warm" else duration
            targets = self._file(f"booking-targets-{stage}.txt", self.new_targets(stage, seconds))
            tokens = self._file("booker-tokens.txt", self.tokens)
            return [targets, tokens, str(threads), f"bk{stage}{self.runs}", ERRAND_TYPE, BODY_NOTE]

        return args

    def outcome(self, slot_ids: list[int] | None = None) -> dict[str, int]:
        """Occurrences over capacity, counters that disagree with the active bookings, and bookings made, for
        the given slots (every occurrence when None)."""
        where = "" if slot_ids is None else "WHERE o.slot_id = ANY(%(slots)s)"
        sql = f"""
            SELECT count(*) FILTER (WHERE o.booked > o.capacity OR coalesce(b.active, 0) > o.capacity),
                   count(*) FILTER (WHERE o.booked <> coalesce(b.active, 0)),
                   coalesce(sum(coalesce(b.active, 0)), 0),
                   count(*)
            FROM slot_occurrences o
            LEFT JOIN (
                SELECT occurrence_id, count(*) AS active FROM appointment_bookings
                WHERE state = 'booked' GROUP BY occurrence_id
            ) b ON b.occurrence_id = o.id
            {where}
        """
        with self._connect() as conn:
            params = None if slot_ids is None else {"slots": slot_ids}
            over, miscounted, bookings, occurrences = conn.execute(sql, params).fetchone()
        return {
            "overbooked": over,
            "miscounted": miscounted,
            "bookings": int(bookings),
            "occurrences": occurrences,
        }

    def check(self, result: RowResult) -> None:
        """After the measured run: no occurrence overbooked (anywhere), booked == active bookings, and as
        many bookings as wrk counted 201s."""
        if result.result is None:
            return
        everywhere = self.outcome()
        measured = self.outcome(self.slot_ids.get("measure", []))
        statuses = result.result.statuses or {}
        created, refused = statuses.get("201", 0), statuses.get("409", 0)
        # wrk stops with requests in flight: their bookings can commit after it stopped counting.
        in_flight = result.row.connections or self.connections
        problems = check_problems(
            {**measured, "overbooked": everywhere["overbooked"], "miscounted": everywhere["miscounted"]},
            created,
            in_flight,
        )
        result.note = (
            f"{created:,} 201s, {refused:,} 409s; {measured['bookings']:,} bookings in "
            f"{measured['occurrences']:,} occurrences (capacity {CAPACITY}, {BOOKERS} residents each); "
            f"all {everywhere['occurrences']:,} occurrences within capacity: "
            f"{'yes' if not everywhere['overbooked'] else 'NO'}, booked = active bookings: "
            f"{'yes' if not everywhere['miscounted'] else 'NO'}"
        )
        if problems:
            result.problem = "; ".join(problems)
