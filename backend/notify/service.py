"""Notifications: the in-app inbox every user has, and WeChat subscribe messages where the user granted one.

Other domains call ``notify`` / ``notify_many`` inside their own transaction; the inbox row and the outbox
message for the WeChat delivery commit with their state change. The "notify.send" job then calls ``deliver``.
"""

import json
from collections.abc import Iterable
from datetime import timedelta
from importlib import resources

import requests
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from wechatpy.exceptions import WeChatClientException

from backend import clock, wechat
from backend.auth.models import User
from backend.db import db
from backend.errors import NotFound, ValidationFailed
from backend.notify import events
from backend.notify.models import (
    FINAL_STATUSES,
    Notification,
    NotificationHistory,
    NotificationTemplate,
    SubscriptionGrant,
)
from backend.outbox import service as outbox
from backend.pagination import paginate

SEND_JOB = "notify.send"
SEND_QUEUE = "default"
SEED_FILE = "seed/notify-templates.json"
MAX_BODY = 1000
MAX_PAGE = 256

# Seconds to wait before each further call after a retryable failure; the call after the last one that
# still fails marks the notification failed (so at most len(RETRY_DELAYS) + 1 calls).
RETRY_DELAYS = (60, 300, 900, 1800, 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
REFUSED = 43101
# Quota (45009 daily, 45011 per minute), WeChat busy (-1), and a token still refused after the one refresh
# backend.wechat's client makes (40001, 40014, 42001): all may pass, so they are tried again later.
RETRYABLE = frozenset({45009, 45011, -1, 40001, 40014, 42001})


# Creating


def _clean_fields(fields: dict[str, str]) -> dict[str, str]:
    if not isinstance(fields, dict):
        raise ValueError("fields must be a dict of semantic field → text")
    clean = {}
    for key, value in fields.items():
        if value is None:  # a field the caller does not know (an order without a number yet)
            continue
        if key not in events.SEMANTIC_FIELDS:
            raise ValueError(
                f"unknown notification field {key!r}; one of {', '.join(events.SEMANTIC_FIELDS)}"
            )
        if not isinstance(value, str):
            raise ValueError(f"notification field {key!r} must be a string")
        value = value.strip()
        if value:
            clean[key] = value
    if "subject" not in clean:
        raise ValueError("notification field 'subject' is required")
    if "at" in clean:
        try:
            events.parse_time(clean["at"])
        except ValueError:
            raise ValueError(f"notification field 'at' is not an ISO 8601 time: {clean['at']!r}") from None
    return clean


def _check_page(page: str | None) -> None:
    if page is not None and (not isinstance(page, str) or len(page) > MAX_PAGE):
        raise ValueError(f"page must be a mini-program path of at most {MAX_PAGE} characters")


def _create(*, user_id, spec: events.Event, fields, page, subject_type, subject_id) -> Notification:
    notification = Notification(
        user_id=user_id,
        event=spec.name,
        title=spec.title_for(fields),
        body=spec.body(fields)[:MAX_BODY],
        fields=fields,
        page=page,
        subject_type=subject_type,
        subject_id=subject_id,
        status="pending" if spec.has_template else "inbox_only",
        updated_at=clock.now(),
    )
    notification.history.append(NotificationHistory(outcome="queued" if spec.has_template else "inbox_only"))
    db.session.add(notification)
    return notification


def _queue(notifications: list[Notification]) -> None:
    db.session.flush()
    for notification in notifications:
        if notification.status == "pending":
            outbox.record(job=SEND_JOB, args={"notification_id": notification.id}, queue=SEND_QUEUE)


def notify(
    *,
    user_id: int,
    event: str,
    fields: dict[str, str],
    page: str | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
) -> Notification:
    """Put a notification in the user's inbox and queue its WeChat delivery, in the caller's transaction."""
    spec = events.get_event(event)
    clean = _clean_fields(fields)
    _check_page(page)
    notification = _create(
        user_id=user_id,
        spec=spec,
        fields=clean,
        page=page,
        subject_type=subject_type,
        subject_id=subject_id,
    )
    _queue([notification])
    return notification


def notify_many(
    *,
    user_ids: Iterable[int],
    event: str,
    fields: dict[str, str],
    page: str | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
) -> list[Notification]:
    """Notify each user once (duplicates dropped, order kept), in the caller's transaction."""
    spec = events.get_event(event)
    clean = _clean_fields(fields)
    _check_page(page)
    notifications = [
        _create(
            user_id=user_id,
            spec=spec,
            fields=dict(clean),
            page=page,
            subject_type=subject_type,
            subject_id=subject_id,
        )
        for user_id in dict.fromkeys(user_ids)
    ]
    _queue(notifications)
    return notifications


# Delivering (the "notify.send" job)


def _lock_notification(notification_id: int) -> Notification | None:
    # Fresh from the database even if this session already holds the object: the status decides everything.
    query = (
        select(Notification)
        .where(Notification.id == notification_id)
        .execution_options(populate_existing=True)
    )
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def _grant_filter(user_id: int, template_id: str):
    return (SubscriptionGrant.user_id == user_id, SubscriptionGrant.template_id == template_id)


def _take_grant(user_id: int, template_id: str) -> bool:
    """Use one of the user's grants for the template; the row stays locked until the job commits."""
    take = (
        update(SubscriptionGrant)
        .where(*_grant_filter(user_id, template_id), SubscriptionGrant.remaining > 0)
        .values(remaining=SubscriptionGrant.remaining - 1, updated_at=clock.now())
    )
    return bool(db.session.execute(take).rowcount)


def _give_back_grant(user_id: int, template_id: str) -> None:
    give = (
        update(SubscriptionGrant)
        .where(*_grant_filter(user_id, template_id))
        .values(remaining=SubscriptionGrant.remaining + 1, updated_at=clock.now())
    )
    db.session.execute(give)


def _clear_grants(user_id: int, template_id: str) -> None:
    clear = (
        update(SubscriptionGrant)
        .where(*_grant_filter(user_id, template_id))
        .values(remaining=0, updated_at=clock.now())
    )
    db.session.execute(clear)


def _record(
    notification: Notification,
    *,
    status: str,
    outcome: str,
    errcode: int | None = None,
    errmsg: str | None = None,
) -> None:
    now = clock.now()
    errmsg = None if errmsg is None else str(errmsg)[:200]
    notification.status = status
    notification.updated_at = now
    if errcode is not None or errmsg is not None:
        notification.errcode, notification.errmsg = errcode, errmsg
    notification.history.append(NotificationHistory(at=now, outcome=outcome, errcode=errcode, errmsg=errmsg))


def template_data(*, template: NotificationTemplate, notification: Notification) -> dict:
    """The subscribe message's ``data``: each template key filled from its semantic field, cut to fit."""
    spec = events.get_event(notification.event)
    values = dict(notification.fields)
    values.setdefault("state", spec.default_state)
    values.setdefault("at", clock.to_local(notification.created_at).isoformat())
    data = {}
    for key, field in template.fields.items():
        value = values.get(field, "")
        kind = events.WECHAT_KEY.match(key)
        if field == "at" and kind and kind.group(1) not in ("time", "date"):
            value = events.format_time(value)
        if field == "state" and kind and kind.group(1) == "phrase":
            value = spec.phrase_for(value)
        data[key] = {"value": events.fit_value(key, value)}
    return data


def deliver(*, notification_id: int) -> Notification | None:
    """Send a notification's WeChat message once if the user holds a grant, and record the outcome."""
    notification = _lock_notification(notification_id)
    if notification is None or notification.status in FINAL_STATUSES:
        return notification
    template = db.session.get(NotificationTemplate, notification.event)
    if template is None or not template.enabled:
        why = "未配置微信模板" if template is None else "微信模板已停用"
        _record(notification, status="disabled", outcome="disabled", errmsg=why)
        return notification
    user = db.session.get(User, notification.user_id)
    notification.template_id = template.template_id
    if not user.is_active:  # a stopped account (staff who left): its inbox keeps it, WeChat is not used
        _record(notification, status="inbox_only", outcome="inbox_only", errmsg="账号已停用")
        return notification
    if not user.openid or not _take_grant(user.id, template.template_id):
        _record(notification, status="no_grant", outcome="no_grant")
        return notification

    notification.attempts += 1
    try:
        result = wechat.client().wxa.send_subscribe_message(
            user.openid,
            template.template_id,
            template_data(template=template, notification=notification),
            page=notification.page,
        )
    except WeChatClientException as exc:
        if exc.errcode == REFUSED:
            _clear_grants(user.id, template.template_id)
            _record(notification, status="refused", outcome="refused", errcode=exc.errcode, errmsg=exc.errmsg)
            return notification
        _give_back_grant(user.id, template.template_id)
        if exc.errcode is None:  # an HTTP-level failure: WeChat answered 5xx or no JSON
            status = getattr(exc.response, "status_code", None)
            _retry_or_fail(notification, errcode=None, errmsg=f"HTTP {status}")
        elif exc.errcode in RETRYABLE:
            _retry_or_fail(notification, errcode=exc.errcode, errmsg=exc.errmsg)
        else:
            _record(notification, status="failed", outcome="failed", errcode=exc.errcode, errmsg=exc.errmsg)
        return notification
    except requests.RequestException as exc:
        # Unreachable or timed out. A timeout may hide a message WeChat did send: retrying then repeats it.
        _give_back_grant(user.id, template.template_id)
        _retry_or_fail(notification, errcode=None, errmsg=wechat.failure_text(exc))
        return notification
    if not isinstance(result, dict):
        # wechatpy returns the raw response when the body is not JSON (a proxy's page with status 200):
        # nothing says WeChat took it, so it is tried again like an HTTP failure.
        _give_back_grant(user.id, template.template_id)
        status = getattr(result, "status_code", None)
        _retry_or_fail(notification, errcode=None, errmsg=f"HTTP {status} (not JSON)")
        return notification
    notification.msgid = str(result.get("msgid", ""))[:32] or None
    notification.errcode, notification.errmsg = None, None
    _record(notification, status="sent", outcome="sent")
    return notification


def _retry_or_fail(notification: Notification, *, errcode: int | None, errmsg: str | None) -> None:
    if notification.attempts >= MAX_ATTEMPTS:
        _record(notification, status="failed", outcome="failed", errcode=errcode, errmsg=errmsg)
        return
    _record(notification, status="retrying", outcome="retry", errcode=errcode, errmsg=errmsg)
    delay = timedelta(seconds=RETRY_DELAYS[notification.attempts - 1])
    outbox.record(
        job=SEND_JOB,
        args={"notification_id": notification.id},
        queue=SEND_QUEUE,
        run_at=clock.now() + delay,
    )


# Inbox


def inbox_page(*, user, unread: bool = False, limit: int, cursor: str | None) -> dict:
    """Return a page of the user's own notifications, newest first, with the unread count."""
    query = select(Notification).where(Notification.user_id == user.id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    page = paginate(query, Notification.id, limit=limit, cursor=cursor, descending=True)
    page["unread_count"] = unread_count(user=user)
    return page


def unread_count(*, user) -> int:
    """Count the user's notifications not read yet."""
    query = select(func.count()).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    return db.session.scalar(query)


def get_notification(*, user, public_id: str) -> Notification:
    """Return one of the user's own notifications; anyone else's is as absent as one that never was."""
    notification = db.session.scalar(
        select(Notification).where(Notification.public_id == public_id, Notification.user_id == user.id)
    )
    if notification is None:
        raise NotFound("通知不存在", code="notification_not_found")
    return notification


def mark_read(*, user, public_id: str) -> Notification:
    """Mark one of the user's notifications read (reading it again keeps the first time)."""
    notification = get_notification(user=user, public_id=public_id)
    if notification.read_at is None:
        notification.read_at = clock.now()
        db.session.commit()
    return notification


def mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; return how many."""
    result = db.session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=clock.now())
    )
    db.session.commit()
    return result.rowcount


# Templates


def _in_event_order(rows: Iterable[NotificationTemplate]) -> list[NotificationTemplate]:
    order = {name: i for i, name in enumerate(events.EVENTS)}
    return sorted(rows, key=lambda row: order.get(row.event, len(order)))


def list_templates() -> list[NotificationTemplate]:
    """Return every configured template, in the events' order."""
    return _in_event_order(db.session.scalars(select(NotificationTemplate)))


def _templated_event(event: str) -> events.Event:
    spec = events.EVENTS.get(event)
    if spec is None:
        raise NotFound("没有这种通知", code="notification_event_not_found")
    if not spec.has_template:
        raise ValidationFailed(details={"event": ["该通知只进站内信，不发微信订阅消息"]})
    return spec


def update_template(
    *, actor, event: str, template_id: str, fields: dict, enabled: bool
) -> NotificationTemplate:
    """Set an event's WeChat template id, key mapping and switch; seeding never overwrites it afterwards."""
    _templated_event(event)
    errors = events.mapping_errors(fields)
    if errors or not fields:
        raise ValidationFailed(details={"fields": errors or ["至少需要一个关键词"]})
    row = db.session.get(NotificationTemplate, event)
    if row is None:
        row = NotificationTemplate(event=event)
        db.session.add(row)
    row.template_id = template_id
    row.fields = dict(fields)
    row.enabled = enabled
    row.updated_by_id = actor.id
    row.updated_at = clock.now()
    db.session.commit()
    return row


def shipped_templates() -> dict[str, dict]:
    """The default templates shipped in backend/seed, checked against the events."""
    text = resources.files("backend").joinpath(SEED_FILE).read_text(encoding="utf-8")
    shipped = json.loads(text)["templates"]
    for event, spec in shipped.items():
        if event not in events.EVENTS or not events.EVENTS[event].has_template:
            raise ValueError(f"{SEED_FILE}: {event!r} is not an event with a WeChat template")
        if events.mapping_errors(spec["fields"]):
            raise ValueError(f"{SEED_FILE}: bad field mapping for {event!r}")
    return shipped


def seed_templates() -> list[str]:
    """Add the shipped template of every event not configured yet; return the events added.

    Idempotent, and never overrides people: an event already in the table keeps its row as it is.
    """
    existing = set(db.session.scalars(select(NotificationTemplate.event)))
    added = []
    for event, spec in shipped_templates().items():
        if event in existing:
            continue
        db.session.add(
            NotificationTemplate(
                event=event,
                template_id=spec["template_id"],
                fields=dict(spec["fields"]),
                enabled=spec.get("enabled", True),
            )
        )
        added.append(event)
    if not added:
        return []
    try:
        db.session.commit()
    except IntegrityError:
        # Another process seeded at the same moment; its rows are the same.
        db.session.rollback()
        return []
    return added


# Subscription grants


def _add_grant(user_id: int, template_id: str) -> None:
    bump = (
        update(SubscriptionGrant)
        .where(*_grant_filter(user_id, template_id))
        .values(remaining=SubscriptionGrant.remaining + 1, updated_at=clock.now())
    )
    if db.session.execute(bump).rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.add(SubscriptionGrant(user_id=user_id, template_id=template_id, remaining=1))
    except IntegrityError:
        # The same user's other request created the row first; its row lock now orders us after it.
        db.session.execute(bump)


def record_subscriptions(*, user, results: dict[str, str]) -> None:
    """Record a wx.requestSubscribeMessage result: each accept is one more grant, a ban clears them; the
    caller commits."""
    known = set(db.session.scalars(select(NotificationTemplate.template_id)))
    unknown = {tid: ["不是已配置的订阅消息模板"] for tid in results if tid not in known}
    if unknown:
        raise ValidationFailed("订阅结果中有未知的模板", details={"results": unknown})
    for template_id, answer in results.items():
        if answer == "accept":
            _add_grant(user.id, template_id)
        elif answer == "ban":
            _clear_grants(user.id, template_id)
        # "reject" and "filter" grant nothing and take nothing away.


def list_grants(*, user) -> list[dict]:
    """Return, per event with a template, how many one-time grants the user has left for it."""
    counts = dict(
        db.session.execute(
            select(SubscriptionGrant.template_id, SubscriptionGrant.remaining).where(
                SubscriptionGrant.user_id == user.id
            )
        ).all()
    )
    return [
        {
            "event": row.event,
            "title": events.EVENTS[row.event].title,
            "template_id": row.template_id,
            "enabled": row.enabled,
            "remaining": counts.get(row.template_id, 0),
        }
        for row in list_templates()
    ]
