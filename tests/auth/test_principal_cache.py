"""Two processes, one database: what one commits about a session or a user's roles, the other honours at
once, although it keeps principals in memory (on PostgreSQL; on SQLite it keeps none)."""

import json
import subprocess
import sys

import pytest

from backend.auth.models import RoleMembership
from backend.db import db
from tests.worker_process import wait_for, worker_env


class OtherProcess:
    def __init__(self, app):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.auth.other_process"],
            env=worker_env(app),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def ask(self, command: dict) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def get(self, path: str, token: str) -> dict:
        return self.ask({"path": path, "token": token})

    def kept(self) -> int:
        return self.ask({"cached": True})["size"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def other(app):
    process = OtherProcess(app)
    yield process
    process.close()


def _token(headers: dict) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_a_session_signed_out_here_is_refused_there(client, auth, other):
    headers = auth("resident_a1")
    assert other.get("/api/v1/me", _token(headers))["status"] == 200
    assert other.kept() == (1 if db.engine.dialect.name == "postgresql" else 0)
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    # Told within milliseconds; the wait only absorbs the delivery, far below the entries' minute of life.
    refused = wait_for(
        lambda: (answer := other.get("/api/v1/me", _token(headers)))["status"] == 401 and answer,
        timeout=2,
        what="the other process to refuse the signed-out session",
    )
    assert refused["body"]["code"] == "session_revoked"


def test_a_role_granted_here_counts_there(client, auth, world, other):
    token = _token(auth("resident_a1"))
    assert other.get("/api/v1/orders/board", token)["status"] == 403
    db.session.add(
        RoleMembership(
            user_id=world.users["resident_a1"].id,
            role="secretary",
            scope_type="community",
            scope_id=world.community_a.id,
        )
    )
    db.session.commit()
    wait_for(
        lambda: other.get("/api/v1/orders/board", token)["status"] == 200,
        timeout=2,
        what="the other process to see the new role",
    )


def test_a_residence_removed_here_is_gone_there(client, auth, world, other):
    """A resident who removes their grid here stops being its resident in a process that kept them: there
    they may no longer place an order (403 residence_required, before the empty body is read; a resident's
    is 422). Their own orders list stays theirs either way, so it tells nothing of their roles."""
    headers = auth("resident_a1")
    token = _token(headers)

    def placing() -> dict:
        return other.ask({"method": "POST", "path": "/api/v1/orders", "token": token})

    assert placing()["status"] == 422
    url = f"/api/v1/me/residence/{world.grid_a1.public_id}"
    assert client.delete(url, headers=headers).status_code == 204
    refused = wait_for(
        lambda: (answer := placing())["status"] == 403 and answer,
        timeout=2,
        what="the other process to see the residence removed",
    )
    assert refused["body"]["code"] == "residence_required"
