"""notify() puts a notification in the inbox and queues its WeChat delivery; the job sends it at most once,
honouring the user's one-time grants, and records every attempt. WeChat is the fake server, over HTTP."""

from datetime import timedelta

import pytest
import time_machine
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from backend import clock
from backend.db import db
from backend.notify import service
from backend.notify.models import Notification, SubscriptionGrant
from backend.outbox import service as outbox
from backend.outbox.models import OutboxMessage

ORDER_FIELDS = {
    "subject": "水管漏水维修",
    "number": "SD20260501001",
    "state": "已受理",
    "at": "2026-05-01T09:30:00+08:00",
    "note": "请保持电话畅通",
}


def remaining(user, template) -> int:
    query = select(SubscriptionGrant.remaining).where(
        SubscriptionGrant.user_id == user.id, SubscriptionGrant.template_id == template.template_id
    )
    return db.session.scalar(query) or 0


def outcomes(notification) -> list[str]:
    return [step.outcome for step in notification.history]


def send_messages() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.job == "notify.send").order_by(OutboxMessage.id)
        )
    )


# notify() itself


def test_notify_is_part_of_the_callers_transaction(world):
    resident = world.users["resident_a1"]
    service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
    assert send_messages() == []


def test_notify_fills_the_inbox_and_records_one_send(world):
    resident = world.users["resident_a1"]
    notification = service.notify(
        user_id=resident.id,
        event="order_accepted",
        fields=ORDER_FIELDS,
        page="pages/orders/detail?id=o_1",
        subject_type="order",
        subject_id=7,
    )
    db.session.commit()
    assert notification.title == "工单已受理"
    assert notification.body.startswith("您的「水管漏水维修」已由社区受理。")
    assert "编号：SD20260501001" in notification.body
    assert "时间：2026年05月01日 09:30" in notification.body
    assert notification.status == "pending"
    assert outcomes(notification) == ["queued"]
    [message] = send_messages()
    assert message.args == {"notification_id": notification.id}


def test_inbox_only_events_are_not_sent(world, run_due, fake_wechat):
    secretary = world.users["secretary_a"]
    warning = service.notify(user_id=secretary.id, event="sla_warning", fields={"subject": "水管漏水维修"})
    supervision = service.notify(user_id=secretary.id, event="supervision_raised", fields={"subject": "路灯"})
    db.session.commit()
    assert (warning.title, supervision.title) == ("黄牌预警", "督办提醒")
    assert {warning.status, supervision.status} == {"inbox_only"}
    assert warning.status_label == "仅站内通知"
    assert send_messages() == []
    assert run_due() == 0
    assert fake_wechat.state.calls("subscribe_send") == 0


@pytest.mark.parametrize(
    ("event", "fields", "complaint"),
    [
        ("order_exploded", {"subject": "x"}, "unknown notification event"),
        ("order_accepted", {"subject": "x", "colour": "red"}, "unknown notification field"),
        ("order_accepted", {"number": "SD1"}, "'subject' is required"),
        ("order_accepted", {"subject": "x", "at": "tomorrow"}, "not an ISO 8601 time"),
        ("order_accepted", {"subject": "x", "number": 12}, "must be a string"),
    ],
)
def test_bad_calls_are_refused(world, event, fields, complaint):
    with pytest.raises(ValueError, match=complaint):
        service.notify(user_id=world.users["resident_a1"].id, event=event, fields=fields)


def test_notify_many_notifies_each_user_once(world):
    a, b = world.users["secretary_a"].id, world.users["org_admin"].id
    notifications = service.notify_many(user_ids=[a, b, a, b, a], event="order_overdue", fields=ORDER_FIELDS)
    db.session.commit()
    assert [n.user_id for n in notifications] == [a, b]
    assert len(send_messages()) == 2


# Sending


def test_a_grant_is_consumed_by_one_send(world, templates, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    template = templates["order_accepted"]
    grant(resident, "order_accepted")
    fields = {
        **ORDER_FIELDS,
        "subject": "小区东门水管漏水需要紧急维修请尽快上门处理",
        "state": "社区已受理工单",
    }
    notification = service.notify(
        user_id=resident.id, event="order_accepted", fields=fields, page="pages/orders/detail?id=o_1"
    )
    db.session.commit()
    assert run_due() == 1

    [message] = fake_wechat.state.messages(resident.openid)
    assert message["template_id"] == template.template_id
    assert message["page"] == "pages/orders/detail?id=o_1"
    assert message["data"] == {
        "thing1": {"value": "小区东门水管漏水需要紧急维修请尽快上门…"},
        "character_string2": {"value": "SD20260501001"},
        # WeChat takes 5 Chinese characters and nothing else here: cut, with no mark.
        "phrase3": {"value": "社区已受理"},
        "time4": {"value": "2026年05月01日 09:30"},
        "thing5": {"value": "请保持电话畅通"},
    }
    assert len(message["data"]["thing1"]["value"]) == 20
    db.session.refresh(notification)
    assert notification.status == "sent"
    assert notification.msgid == str(message["msgid"])
    assert notification.attempts == 1
    assert outcomes(notification) == ["queued", "sent"]
    assert remaining(resident, template) == 0


def test_a_long_state_word_is_sent_as_the_phrase_written_for_it(
    world, templates, grant, run_due, fake_wechat
):
    """The agent's notice of an errand ended while they hold the resident's cash says 终止并退还现金 (7
    characters): its phrase keyword takes 5 Chinese characters only, and cut (终止并退还) it lost the cash.
    WeChat gets the phrase written for it, 终止退现金; the inbox keeps the whole word."""
    agent = world.users["volunteer"]
    grant(agent, "errand_step_changed")
    fields = {"subject": "代购药品", "number": "DB001", "state": "终止并退还现金", "note": "现金 50.00 元"}
    notification = service.notify(user_id=agent.id, event="errand_step_changed", fields=fields)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "sent", (notification.errcode, notification.errmsg)
    [message] = fake_wechat.state.messages(agent.openid)
    assert message["data"]["phrase3"] == {"value": "终止退现金"}
    assert message["data"]["thing5"] == {"value": "现金 50.00 元"}
    assert notification.title == "代办已终止"
    assert notification.body.splitlines() == [
        "「代购药品」已按办理失败终止，请停止办理，并将代收的现金退还居民。",
        "编号：DB001",
        "状态：终止并退还现金",
        "备注：现金 50.00 元",
    ]
    # A word that fits is sent as it is.
    fitting = service.notify(
        user_id=agent.id, event="errand_step_changed", fields={**fields, "state": "退还现金"}
    )
    data = service.template_data(template=templates["errand_step_changed"], notification=fitting)
    assert data["phrase3"] == {"value": "退还现金"}


def test_without_a_grant_nothing_is_sent_and_that_is_recorded(world, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    notification = service.notify(user_id=resident.id, event="order_taken", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "no_grant"
    assert notification.status_label == "未订阅微信提醒，仅站内通知"
    assert outcomes(notification) == ["queued", "no_grant"]
    assert fake_wechat.state.calls("subscribe_send") == 0


def test_grants_are_per_template(world, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted")
    notification = service.notify(user_id=resident.id, event="order_resolved", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "no_grant"
    assert fake_wechat.state.messages() == []


def test_a_refusal_clears_the_grant(world, templates, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    template = templates["order_dispatched"]
    grant(resident, "order_dispatched", times=3)
    fake_wechat.state.refuse(resident.openid, template.template_id)
    first = service.notify(user_id=resident.id, event="order_dispatched", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(first)
    assert first.status == "refused"
    assert first.errcode == 43101
    assert [(s.outcome, s.errcode) for s in first.history] == [("queued", None), ("refused", 43101)]
    assert remaining(resident, template) == 0

    second = service.notify(user_id=resident.id, event="order_dispatched", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(second)
    assert second.status == "no_grant"
    assert fake_wechat.state.calls("subscribe_send") == 1


def test_a_rate_limit_burst_is_retried_later_and_sent_once(world, templates, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    template = templates["order_accepted"]
    grant(resident, "order_accepted")
    fake_wechat.state.inject_fault("subscribe_send", errcode=45011, count=2)
    notification = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()

    start = clock.now()
    assert run_due() == 1
    db.session.refresh(notification)
    assert notification.status == "retrying"
    assert notification.errcode == 45011
    assert remaining(resident, template) == 1  # not used up by a message WeChat did not take
    retry = send_messages()[-1]
    assert retry.done_at is None
    assert retry.args == {"notification_id": notification.id}
    assert retry.run_at >= start + timedelta(seconds=service.RETRY_DELAYS[0])
    assert run_due() == 0  # not before its time

    with time_machine.travel(retry.run_at + timedelta(seconds=1)):
        assert run_due() == 1
        db.session.refresh(notification)
        assert notification.status == "retrying"
        retry = send_messages()[-1]
    with time_machine.travel(retry.run_at + timedelta(seconds=1)):
        assert run_due() == 1

    db.session.refresh(notification)
    assert notification.status == "sent"
    assert notification.attempts == 3
    assert [(s.outcome, s.errcode) for s in notification.history] == [
        ("queued", None),
        ("retry", 45011),
        ("retry", 45011),
        ("sent", None),
    ]
    assert len(fake_wechat.state.messages()) == 1
    assert remaining(resident, template) == 0
    assert fake_wechat.state.calls("subscribe_send") == 3


def test_retries_are_bounded(world, templates, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "errand_step_changed")
    fake_wechat.state.inject_fault("subscribe_send", errcode=45009, count=service.MAX_ATTEMPTS + 5)
    notification = service.notify(
        user_id=resident.id, event="errand_step_changed", fields={"subject": "低保申请", "state": "已递交"}
    )
    db.session.commit()
    run_due()
    for _ in range(service.MAX_ATTEMPTS - 1):
        retry = send_messages()[-1]
        with time_machine.travel(retry.run_at + timedelta(seconds=1)):
            assert run_due() == 1
    db.session.refresh(notification)
    assert notification.status == "failed"
    assert notification.attempts == service.MAX_ATTEMPTS
    assert outcomes(notification) == ["queued"] + ["retry"] * (service.MAX_ATTEMPTS - 1) + ["failed"]
    assert all(m.done_at is not None for m in send_messages())  # nothing more is scheduled
    assert fake_wechat.state.calls("subscribe_send") == service.MAX_ATTEMPTS
    assert remaining(resident, templates["errand_step_changed"]) == 1


def test_wechat_server_errors_and_outages_are_retried(world, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "order_taken")
    fake_wechat.state.inject_fault("subscribe_send", http_status=502)
    notification = service.notify(user_id=resident.id, event="order_taken", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "retrying"
    assert notification.errmsg == "HTTP 502"
    with time_machine.travel(send_messages()[-1].run_at + timedelta(seconds=1)):
        run_due()
    db.session.refresh(notification)
    assert notification.status == "sent"
    assert len(fake_wechat.state.messages()) == 1


def test_an_unreachable_wechat_is_recorded_without_the_apps_secret(app, world, grant, run_due, monkeypatch):
    """The token request carries the app's secret in its query string, and a connection error quotes the
    URL: what is stored of it keeps the URL's path alone."""
    resident = world.users["resident_a1"]
    grant(resident, "order_taken")
    monkeypatch.setitem(app.config, "WECHAT_API_BASE_URL", "http://127.0.0.1:1/")
    notification = service.notify(user_id=resident.id, event="order_taken", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "retrying"
    stored = [notification.errmsg, *(step.errmsg for step in notification.history)]
    assert any("cgi-bin/token?…" in (text or "") for text in stored), stored
    secret = app.config["WECHAT_SECRET"]
    assert not any(secret[:8] in (text or "") for text in stored), stored


def test_other_errors_fail_and_keep_the_grant(world, templates, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted")
    fake_wechat.state.inject_fault("subscribe_send", errcode=40037)
    notification = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "failed"
    assert (notification.errcode, notification.errmsg) == (40037, "invalid template_id")
    assert [(s.outcome, s.errcode) for s in notification.history][-1] == ("failed", 40037)
    assert remaining(resident, templates["order_accepted"]) == 1
    assert run_due() == 0


def test_an_expired_access_token_is_refreshed_and_the_message_sent(world, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted", times=2)
    first = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    assert fake_wechat.state.calls("token") == 1

    assert fake_wechat.state.expire_tokens() == 1
    second = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.status, second.status) == ("sent", "sent")
    assert second.attempts == 1
    assert fake_wechat.state.calls("token") == 2
    assert len(fake_wechat.state.messages(resident.openid)) == 2


def test_a_token_refused_after_one_refresh_is_retried_later_not_in_a_loop(world, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted")
    fake_wechat.state.inject_fault("subscribe_send", errcode=40001, count=50)
    notification = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "retrying"
    assert notification.errcode == 40001
    assert fake_wechat.state.calls("subscribe_send") == 2  # the call, and one more after one refresh
    assert fake_wechat.state.calls("token") == 2


def test_a_disabled_template_sends_nothing(world, templates, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted")
    template = templates["order_accepted"]
    service.update_template(
        actor=world.users["street_admin"],
        event="order_accepted",
        template_id=template.template_id,
        fields=dict(template.fields),
        enabled=False,
    )
    notification = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "disabled"
    assert fake_wechat.state.calls("subscribe_send") == 0
    assert remaining(resident, template) == 1


def test_a_disabled_account_is_sent_nothing(world, templates, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted")
    notification = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    resident.is_active = False
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert (notification.status, notification.errmsg) == ("inbox_only", "账号已停用")
    assert fake_wechat.state.calls("subscribe_send") == 0
    assert remaining(resident, templates["order_accepted"]) == 1


def test_a_job_run_twice_sends_once(app, world, templates, grant, fake_wechat):
    """Through the relay and RQ: the same message enqueued twice, and a second message for the same
    notification, still give one WeChat message and use one grant."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    resident = world.users["resident_a1"]
    grant(resident, "order_resolved", times=2)
    notification = service.notify(user_id=resident.id, event="order_resolved", fields=ORDER_FIELDS)
    db.session.commit()
    outbox.record(job="notify.send", args={"notification_id": notification.id})
    db.session.commit()
    first, _second = send_messages()
    assert outbox.relay_all(connection=connection).sent == 2
    Queue("default", connection=connection).enqueue(outbox.RUNNER, first.id, job_id="duplicate")
    queues = [Queue(name, connection=connection) for name in outbox.QUEUES]
    SimpleWorker(queues, connection=connection).work(burst=True)

    db.session.commit()
    assert all(m.done_at is not None for m in send_messages())
    db.session.refresh(notification)
    assert notification.status == "sent"
    assert outcomes(notification) == ["queued", "sent"]
    assert len(fake_wechat.state.messages()) == 1
    assert remaining(resident, templates["order_resolved"]) == 1
    # And the job function itself, called again on a sent notification, changes nothing.
    service.deliver(notification_id=notification.id)
    db.session.commit()
    assert fake_wechat.state.calls("subscribe_send") == 1


def test_appointment_reminder_uses_its_own_mapping(world, grant, run_due, fake_wechat):
    resident = world.users["resident_a1"]
    grant(resident, "appointment_reminder")
    notification = service.notify(
        user_id=resident.id,
        event="appointment_reminder",
        fields={"subject": "残疾证办理", "at": "2026-06-02T01:00:00Z", "place": "幸福街道便民服务中心"},
    )
    db.session.commit()
    run_due()
    [message] = fake_wechat.state.messages()
    assert message["data"] == {
        "thing1": {"value": "残疾证办理"},
        "time2": {"value": "2026年06月02日 09:00"},
        "thing3": {"value": "幸福街道便民服务中心"},
        "thing4": {"value": "无"},
    }
    db.session.refresh(notification)
    assert "地点：幸福街道便民服务中心" in notification.body


# Templates as data


def test_seeding_is_idempotent_and_never_overwrites_an_admin(world, templates):
    assert set(templates) == {
        "order_accepted",
        "order_dispatched",
        "order_taken",
        "order_resolved",
        "order_overdue",
        "errand_step_changed",
        "appointment_reminder",
    }
    service.update_template(
        actor=world.users["street_admin"],
        event="order_taken",
        template_id="real-template-id-from-console",
        fields={"thing1": "subject", "time2": "at"},
        enabled=True,
    )
    assert service.seed_templates() == []
    rows = {row.event: row for row in service.list_templates()}
    assert rows["order_taken"].template_id == "real-template-id-from-console"
    assert rows["order_taken"].fields == {"thing1": "subject", "time2": "at"}
    assert service.list_templates()[0].event == "order_accepted"


def test_a_token_endpoint_that_hangs_times_out_and_the_message_is_retried(
    app, world, grant, run_due, fake_wechat, monkeypatch
):
    # wechatpy fetches the access token without a timeout of its own: WECHAT_TIMEOUT must bound it too,
    # or a hanging WeChat holds the job (and the rows it locked) until RQ kills it, with nothing recorded.
    monkeypatch.setitem(app.config, "WECHAT_TIMEOUT", 0.3)
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted")
    fake_wechat.state.inject_fault("token", delay=3)
    notification = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "retrying"
    assert "Timeout" in notification.errmsg
    assert fake_wechat.state.calls("subscribe_send") == 0


def test_an_answer_that_is_not_json_is_recorded_and_retried(world, templates, grant, run_due, fake_wechat):
    # A proxy's error page with status 200: wechatpy hands back the raw response instead of a dict.
    resident = world.users["resident_a1"]
    grant(resident, "order_accepted")
    fake_wechat.state.inject_fault("subscribe_send", http_status=200)
    notification = service.notify(user_id=resident.id, event="order_accepted", fields=ORDER_FIELDS)
    db.session.commit()
    run_due()
    db.session.refresh(notification)
    assert notification.status == "retrying"
    assert notification.errmsg == "HTTP 200 (not JSON)"
    assert remaining(resident, templates["order_accepted"]) == 1
    with time_machine.travel(send_messages()[-1].run_at + timedelta(seconds=1)):
        run_due()
    db.session.refresh(notification)
    assert notification.status == "sent"
    assert len(fake_wechat.state.messages()) == 1
