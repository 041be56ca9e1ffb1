"""The processes a run needs: PostgreSQL and Redis prepared, the fake WeChat server, two gunicorns."""

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import redis
import requests
import sqlalchemy as sa
from gunicorn.config import KNOWN_SETTINGS

from bench.procmem import children_of

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchSetupError(RuntimeError):
    """Something the run depends on is missing or did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_database(host: str, port: int, user: str, name: str) -> None:
    """Create the bench database when it does not exist yet (CREATE DATABASE cannot run in a transaction)."""
    try:
        with psycopg.connect(
            host=host, port=port, user=user, dbname="postgres", autocommit=True, connect_timeout=5
        ) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise BenchSetupError(f"cannot reach PostgreSQL at {host}:{port} as {user}: {exc}") from exc


def reset_schema(engine: sa.Engine) -> None:
    """Start from an empty database, so every run measures the same table sizes."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        raise BenchSetupError(f"cannot reach Redis at {url}: {exc}") from exc
    finally:
        client.close()


def run_migrations(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise BenchSetupError("sandan migrate failed:\n" + (done.stdout + done.stderr)[-3000:])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _stop_process(proc: subprocess.Popen, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after timeout; True when it had to be killed."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        return True


class FakeWeChatProcess:
    """miniprogram_mock.fake_wechat in its own process, so serving wechatpy under load does not share
    a GIL with the harness; codes are issued through its /_mock/ control endpoint."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self._local = threading.local()

    def start(self, timeout: float = 20) -> "FakeWeChatProcess":
        # Codes must outlive a long run: they are issued before the rows that use them, not just in time.
        argv = [sys.executable, "-m", "miniprogram_mock.fake_wechat", "--port", "0", "--quiet"]
        argv += ["--code-ttl", "7200"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
            )
        # It prints "... at http://127.0.0.1:PORT/" once listening; port 0 avoids a port race.
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                raise BenchSetupError("fake WeChat server did not start:\n" + _log_tail(self.log_path))
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    raise BenchSetupError(
                        "fake WeChat server closed its output:\n" + _log_tail(self.log_path)
                    )
                line += chunk
        self.url = line.decode().rsplit(" at ", 1)[-1].strip()
        if not self.url.startswith("http://"):
            raise BenchSetupError(f"unexpected fake WeChat banner: {line!r}")
        return self

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def issue_code(self, openid: str | None = None) -> str:
        """A one-time wx.login code: for a new user, or for the user with `openid`."""
        body = {"openid": openid} if openid else {}
        response = self._session().post(self.url + "_mock/login-code", json=body, timeout=10)
        response.raise_for_status()
        return response.json()["code"]

    def issue_codes(self, count: int, path: Path) -> None:
        """Issue `count` one-time wx.login codes (each a new user) and write them one a line to path."""
        # Measured: 4 parallel clients get about a quarter more codes/s out of its threaded server than 1.
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                codes = list(pool.map(lambda _: self.issue_code(), range(count)))
        except requests.RequestException as exc:
            raise BenchSetupError(
                f"could not issue wx.login codes: {exc}\n" + _log_tail(self.log_path)
            ) from exc
        path.write_text("\n".join(codes) + "\n")

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc, timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def _no_control_socket() -> list[str]:
    """Newer gunicorns open a control socket at one fixed path per user: two masters (or someone's
    `sandan serve`) would take it from each other, and the benchmark needs none."""
    flag = "--no-control-socket"
    return [flag] if any(flag in (setting.cli or []) for setting in KNOWN_SETTINGS) else []


class Gunicorn:
    """One gunicorn master with sync workers, started in the repository so `bench` and `backend` import."""

    def __init__(self, name: str, app_spec: str, env: dict[str, str], log_path: Path, workers: int = 2):
        self.name = name
        self.app_spec = app_spec
        self.env = env
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Gunicorn":
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            # No --max-requests (unlike `sandan serve`): a recycled worker would hide memory growth.
            "--graceful-timeout",
            "10",
            "--error-logfile",
            str(self.log_path),
            *_no_control_socket(),
            self.app_spec,
        ]
        self.proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        """Poll until GET path answers 200 and every worker is up, or fail with the log's tail."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchSetupError(f"{self.name} gunicorn exited:\n" + _log_tail(self.log_path))
            try:
                response = requests.get(self.url + path, timeout=2)
                if response.status_code == 200 and self._worker_count() >= self.workers:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise BenchSetupError(
            f"{self.name} not ready at {self.url}{path} after {timeout:.0f}s (last: {last}):\n"
            + _log_tail(self.log_path)
        )

    def _worker_count(self) -> int:
        return len(children_of(self.pid))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        workers = children_of(self.pid)
        if not _stop_process(self.proc, timeout=20):
            return
        # A master killed rather than stopped leaves its workers behind until they notice it is gone.
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
