"""Resident memory of gunicorn masters and their workers, read from /proc (Linux only, no psutil)."""

import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class MemInfo:
    rss_kb: int
    hwm_kb: int  # VmHWM: the peak RSS over the process's life, not just while we sampled


def parse_status(text: str) -> MemInfo:
    """Read VmRSS and VmHWM out of /proc/PID/status."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            number, _, unit = rest.strip().partition(" ")
            if unit.strip() != "kB":
                raise ValueError(f"unexpected unit in {line!r}")
            values[key] = int(number)
    if "VmRSS" not in values:
        # Kernel threads and zombies have no Vm* lines.
        raise ValueError("no VmRSS line (a kernel thread or a zombie?)")
    return MemInfo(rss_kb=values["VmRSS"], hwm_kb=values.get("VmHWM", values["VmRSS"]))


def parse_stat_ppid(text: str) -> int:
    """The parent pid from /proc/PID/stat; the command name may itself hold spaces and parentheses."""
    after_comm = text[text.rindex(")") + 2 :]
    fields = after_comm.split()
    # fields[0] is the state, fields[1] the ppid.
    return int(fields[1])


def read_mem(pid: int, proc: Path = PROC) -> MemInfo | None:
    """The process's memory now, or None once it has gone."""
    try:
        return parse_status((proc / str(pid) / "status").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def children_of(pid: int, proc: Path = PROC) -> list[int]:
    """Direct children of pid, found by scanning every process's parent in /proc."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parse_stat_ppid((entry / "stat").read_text()) == pid:
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue  # exited between listdir and read
    return sorted(found)


@dataclass
class Track:
    """What was seen of one process over the run; sizes in kB."""

    server: str
    role: str  # "master" or "worker"
    pid: int
    start_kb: int
    last_kb: int
    hwm_kb: int
    warm_kb: int | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0
    alive: bool = True

    @property
    def growth_kb(self) -> int | None:
        return None if self.warm_kb is None else self.last_kb - self.warm_kb


class MemorySampler:
    """Samples every gunicorn master and worker on a background thread.

    Workers are rediscovered on every sample, so one that gunicorn replaces mid-run shows up as a new
    process (and the one it replaced as gone) instead of silently blending into one line.
    """

    def __init__(self, masters: dict[str, int], interval: float = 0.5, proc: Path = PROC):
        self.masters = dict(masters)
        self.interval = interval
        self.proc = proc
        self.tracks: dict[int, Track] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "MemorySampler":
        self.sample()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        now = time.monotonic()
        seen = set()
        for server, master in self.masters.items():
            for role, pid in [("master", master)] + [("worker", w) for w in children_of(master, self.proc)]:
                mem = read_mem(pid, self.proc)
                if mem is None:
                    continue
                seen.add(pid)
                with self._lock:
                    track = self.tracks.get(pid)
                    if track is None:
                        self.tracks[pid] = Track(
                            server,
                            role,
                            pid,
                            mem.rss_kb,
                            mem.rss_kb,
                            mem.hwm_kb,
                            first_seen=now,
                            last_seen=now,
                        )
                    else:
                        track.last_kb, track.hwm_kb, track.last_seen = mem.rss_kb, mem.hwm_kb, now
        with self._lock:
            for pid, track in self.tracks.items():
                if pid not in seen:
                    track.alive = False

    def mark_warm(self) -> None:
        """Take the post-warm-up reading that growth is measured from."""
        self.sample()
        with self._lock:
            for track in self.tracks.values():
                if track.alive:
                    track.warm_kb = track.last_kb

    def stop(self) -> list[Track]:
        """Stop sampling (after one last sample) and return every process seen, masters first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.sample()
        with self._lock:
            order = list(self.masters)
            return sorted(
                self.tracks.values(),
                key=lambda t: (order.index(t.server), t.role != "master", t.first_seen, t.pid),
            )
