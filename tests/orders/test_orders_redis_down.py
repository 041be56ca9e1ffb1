"""With Redis stopped the API still takes orders and acts on them, losing nothing: the side effects wait in
the outbox and a real worker delivers each exactly once when Redis is back."""

from sqlalchemy import func, select

from backend import create_app
from backend.db import db
from backend.embedded_redis import EmbeddedRedis
from backend.notify import service as notify
from backend.outbox.models import OutboxMessage
from tests.conftest import TEST_KEYS
from tests.factories import login_headers
from tests.orders.conftest import ORDER
from tests.worker_process import running_worker, wait_for


def test_orders_are_taken_while_redis_is_down_and_delivered_once_it_is_back(
    app, fake_wechat, world, tmp_path
):
    redis_server = EmbeddedRedis(data_dir=str(tmp_path)).start()
    outage_app = create_app(
        {
            **{k: app.config[k] for k in ("ENV_NAME", "TESTING", "SQLALCHEMY_DATABASE_URI", "INSTANCE_DIR")},
            "REDIS_URL": redis_server.url,
            "WECHAT_API_BASE_URL": fake_wechat.url,
            **TEST_KEYS,
        }
    )
    client = outage_app.test_client()
    resident = world.users["resident_a1"]
    try:
        with outage_app.app_context():
            resident_headers = login_headers(client, fake_wechat, resident)
            secretary_headers = login_headers(client, fake_wechat, world.users["secretary_a"])
            template = next(t.template_id for t in notify.list_templates() if t.event == "order_accepted")
            client.post(
                "/api/v1/notifications/subscriptions",
                json={"results": {template: "accept"}},
                headers=resident_headers,
            )
        redis_server.stop()

        assert client.get("/readyz").status_code == 503
        placed = client.post("/api/v1/orders", json=ORDER, headers=resident_headers)
        assert placed.status_code == 201, placed.get_json()
        order_id = placed.get_json()["id"]
        accepted = client.post(f"/api/v1/orders/{order_id}/accept", json={}, headers=secretary_headers)
        assert accepted.status_code == 200, accepted.get_json()
        pending = db.session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None)))
        assert pending >= 3  # the secretary's new-order notice, the resident's 受理 notice, the SLA card jobs

        redis_server = EmbeddedRedis(data_dir=str(tmp_path), port=redis_server.port).start()
        with running_worker(outage_app):
            wait_for(lambda: fake_wechat.state.messages(touser=resident.openid), what="the 受理 message")

            def drained():
                db.session.expire_all()
                return not db.session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None)))

            wait_for(drained, what="every outbox message relayed")
        assert len(fake_wechat.state.messages(touser=resident.openid)) == 1
    finally:
        redis_server.stop()
