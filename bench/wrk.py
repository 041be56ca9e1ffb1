"""Running wrk and reading its report."""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"

# wrk prints latencies with format_time_us: us, ms or s, then minutes and hours past 60 s.
_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}

_TIME = r"([0-9.]+)(us|ms|s|m|h)"
_PERCENTILE_RE = re.compile(rf"^\s+(\d+(?:\.\d+)?)%\s+{_TIME}\s*$", re.MULTILINE)
_LATENCY_RE = re.compile(rf"^\s+Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}", re.MULTILINE)
_TOTAL_RE = re.compile(rf"^\s+(\d+) requests in {_TIME}, ([0-9.]+)([KMGT]?)B read", re.MULTILINE)
_RPS_RE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_NON2XX_RE = re.compile(r"^\s+Non-2xx or 3xx responses:\s+(\d+)", re.MULTILINE)
_SOCKET_RE = re.compile(
    r"^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)
_EXHAUSTED_RE = re.compile(r"^bench: codes exhausted: (\d+)", re.MULTILINE)
_STATUS_RE = re.compile(r"^bench: status (.+)$", re.MULTILINE)


class WrkError(RuntimeError):
    """wrk did not run, or printed something that is not a report."""


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    requests_per_sec: float
    bytes_read: int
    latency_avg_ms: float | None
    latency_max_ms: float | None
    # Keyed by the percentile as wrk prints it: 50.0, 75.0, 90.0, 99.0.
    percentiles_ms: dict[float, float] = field(default_factory=dict)
    # wrk's name for the count is misleading: it counts status >= 400 only (3xx pass).
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(
        default_factory=lambda: {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    # Only login.lua reports this; None for scripts that need no codes.
    codes_exhausted: int | None = None
    # Statuses counted by scripts that report them ("bench: status 200=N 409=M other=K ..."); else None.
    statuses: dict[str, int] | None = None

    @property
    def p50_ms(self) -> float | None:
        return self.percentiles_ms.get(50.0)

    @property
    def p99_ms(self) -> float | None:
        return self.percentiles_ms.get(99.0)

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())

    @property
    def failed(self) -> int:
        """Responses and attempts that did not succeed: 4xx/5xx plus socket errors."""
        return self.non_2xx + self.socket_error_count

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.failed == 0


def time_to_ms(value: str, unit: str) -> float:
    """Convert one of wrk's printed durations ("812.00us", "1.20ms", "2.00s") to milliseconds."""
    try:
        return float(value) * _TIME_UNITS_MS[unit]
    except KeyError:
        raise WrkError(f"unknown time unit {unit!r}") from None


def parse_wrk_output(text: str) -> WrkResult:
    """Read the report wrk prints with --latency."""
    total = _TOTAL_RE.search(text)
    rps = _RPS_RE.search(text)
    if total is None or rps is None:
        raise WrkError("no wrk report in output:\n" + text.strip()[-2000:])
    requests = int(total.group(1))
    # With nothing completed wrk still prints a latency of 0.00us, which is no measurement at all.
    latency = _LATENCY_RE.search(text) if requests else None
    percentiles = _PERCENTILE_RE.findall(text) if requests else []
    result = WrkResult(
        requests=requests,
        duration_s=time_to_ms(total.group(2), total.group(3)) / 1000.0,
        requests_per_sec=float(rps.group(1)),
        bytes_read=round(float(total.group(4)) * _SIZE_UNITS[total.group(5)]),
        latency_avg_ms=time_to_ms(latency.group(1), latency.group(2)) if latency else None,
        latency_max_ms=time_to_ms(latency.group(5), latency.group(6)) if latency else None,
        percentiles_ms={float(p): time_to_ms(v, u) for p, v, u in percentiles},
    )
    non_2xx = _NON2XX_RE.search(text)
    if non_2xx:
        result.non_2xx = int(non_2xx.group(1))
    sockets = _SOCKET_RE.search(text)
    if sockets:
        result.socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True)
        )
    exhausted = _EXHAUSTED_RE.search(text)
    if exhausted:
        result.codes_exhausted = int(exhausted.group(1))
    statuses = _STATUS_RE.search(text)
    if statuses:
        result.statuses = {
            k: int(v)
            for k, _, v in (pair.partition("=") for pair in statuses.group(1).split())
            if v.isdigit()
        }
    return result


def wrk_path() -> str | None:
    return shutil.which("wrk")


def ensure_wrk() -> str:
    """Find wrk, installing Debian's package when it is missing and we may."""
    found = wrk_path()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise WrkError("wrk is not installed and there is no apt-get to install it; install wrk")
    prefix = [] if _is_root() else ["sudo", "-n"]
    install = [*prefix, apt, "install", "-y", "-q", "wrk"]
    print("wrk is missing; installing it with apt-get ...", flush=True)
    if subprocess.run(install, capture_output=True, timeout=600).returncode != 0:
        # A fresh container has no package lists yet.
        subprocess.run([*prefix, apt, "update", "-q"], capture_output=True, timeout=600)
        done = subprocess.run(install, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise WrkError("could not install wrk with apt-get:\n" + done.stderr[-2000:])
    found = wrk_path()
    if not found:
        raise WrkError("apt-get installed wrk but it is not on PATH")
    return found


def _is_root() -> bool:
    return os.geteuid() == 0


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    # "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer": the first two words say it.
    words = (done.stdout or done.stderr).split()
    return " ".join(words[:2]) if words else "wrk (unknown version)"


def run_wrk(
    wrk: str,
    url: str,
    *,
    duration: int,
    connections: int,
    threads: int,
    script: str,
    script_args: list[str],
) -> tuple[WrkResult, str]:
    """Run wrk once and return the parsed report with the raw output."""
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(LUA_DIR / script),
        url,
        "--",
        *script_args,
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration + 60:.0f}s") from exc
    output = done.stdout + (("\n" + done.stderr) if done.stderr.strip() else "")
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{output.strip()[-2000:]}")
    return parse_wrk_output(output), output
