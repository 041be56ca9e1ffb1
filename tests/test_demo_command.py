"""The README's run command: `sandan demo` starts everything on the embedded default, and stops cleanly."""

import os
import signal
import socket
import subprocess
import sys
import time

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _ready(base: str, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "demo exited early"
    try:
        return requests.get(f"{base}/readyz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def test_demo_runs_on_the_embedded_default_and_stops_cleanly(tmp_path):
    port, wechat_port = _free_port(), _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "WECHAT_API_BASE_URL")
    }
    env["SANDAN_INSTANCE_DIR"] = str(tmp_path)
    log = open(tmp_path / "demo.log", "w+")  # noqa: SIM115 - read back after the process ends
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "demo", "--port", str(port), "--wechat-port", str(wechat_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: _ready(base, process), 90, "/readyz")
        assert requests.get(f"{base}/readyz", timeout=5).json()["checks"] == {"database": "ok", "redis": "ok"}

        code = requests.post(
            f"http://127.0.0.1:{wechat_port}/_mock/login-code", json={"openid": "demo-secretary-1"}, timeout=5
        ).json()["code"]
        login = requests.post(f"{base}/api/v1/auth/login", json={"code": code}, timeout=10)
        assert login.status_code == 200, login.text
        roles = [r["role"] for r in login.json()["user"]["roles"]]
        assert roles == ["secretary"]
        token = login.json()["access_token"]
        communities = requests.get(
            f"{base}/api/v1/communities", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        assert len(communities["items"]) == 4
        calendar = requests.get(
            f"{base}/api/v1/calendar/days",
            params={"year": 2026},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()
        assert calendar["known"] is True
        assert {"date": "2026-10-01", "kind": "holiday"}.items() <= next(
            d for d in calendar["items"] if d["date"] == "2026-10-01"
        ).items()
        assert requests.get(f"{base}/api/docs", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
        log.seek(0)
        output = log.read()
        log.close()
    assert exit_code == 0, output
    assert f"API 文档: {base}/api/docs" in output
    assert "三单演示已停止" in output
    # Nothing is left listening: the web server and the fake WeChat server are gone.
    for p in (port, wechat_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", p)) != 0


def test_demo_seed_is_idempotent(app):
    from backend import demo
    from backend.db import db

    first = demo.seed()
    second = demo.seed()
    assert first == second
    assert first["communities"] == 4
    assert first["organizations"] == 8
    db.session.commit()


def test_demo_data_is_refused_in_production(app):
    import pytest

    from backend import demo

    with pytest.raises(demo.DemoRefused):
        demo.seed(production=True)


def test_demo_history_is_made_through_the_services_and_consistent(app):
    from itertools import pairwise

    from sqlalchemy import func, select

    from backend import clock, demo
    from backend.appointments.models import Booking
    from backend.db import db
    from backend.errands.models import Errand, ErrandEvent, ErrandType
    from backend.orders.models import Order, OrderEvent

    counts = demo.seed()
    assert counts["service_points"] == 4 and counts["orders"] == len(demo.ORDER_PLAN)
    assert counts["errands"] == 14
    order_states = dict(db.session.execute(select(Order.state, func.count()).group_by(Order.state)).all())
    for state in ("submitted", "accepted", "dispatched", "returned", "taken", "in_progress", "suspended",
                  "resolved", "closed", "rejected", "cancelled"):  # fmt: skip
        assert order_states.get(state), state
    assert db.session.scalar(select(func.count()).where(Order.reopen_count == 1)) == 1
    assert db.session.scalar(select(func.count()).where(Order.extension_request.is_not(None))) == 1
    errand_states = dict(db.session.execute(select(Errand.state, func.count()).group_by(Errand.state)).all())
    assert errand_states["completed"] == 5 and errand_states["cancelled"] == 1
    assert db.session.scalar(select(func.count()).where(Errand.outcome == "refused")) == 1
    assert db.session.scalar(select(func.count()).where(Booking.state == "attended")) >= 8
    # The purchases keep their drug lists: the residents gave the consents they are stored under.
    purchase = ErrandType.code == "medicine_purchase"
    purchases = db.session.scalars(select(Errand).join(Errand.type).where(purchase))
    assert [p.items[0]["drug_name"] for p in purchases] == ["硝苯地平缓释片"] * 2
    # Honest times: nothing in the future, every timeline in order, over about a month.
    now = clock.now()
    for model, key in ((OrderEvent, OrderEvent.order_id), (ErrandEvent, ErrandEvent.errand_id)):
        rows = db.session.execute(select(key, model.at).order_by(key, model.id)).all()
        assert rows and all(clock.to_local(at) <= now for _, at in rows)
        for (a, at_a), (b, at_b) in pairwise(rows):
            assert a != b or at_a <= at_b
    oldest = min(clock.to_local(o.created_at) for o in db.session.scalars(select(Order)))
    assert 25 <= (now - oldest).days <= 31
    # A second run adds nothing.
    assert demo.seed() == counts
    db.session.commit()
