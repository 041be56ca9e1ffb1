from flask import g

from backend import idempotency
from backend.auth import access
from backend.auth.models import User
from backend.auth.roles import Role
from backend.extensions import Blueprint
from backend.notify import service
from backend.notify.schemas import (
    GrantListSchema,
    InboxPageSchema,
    InboxQuerySchema,
    NotificationSchema,
    ReadAllSchema,
    SubscribeSchema,
    TemplateListSchema,
    TemplateSchema,
    TemplateWriteSchema,
)

blp = Blueprint("notifications", __name__, description="站内通知、微信订阅消息与模板")


@blp.get("/notifications")
@access.signed_in
@blp.arguments(InboxQuerySchema, location="query")
@blp.response(200, InboxPageSchema)
def list_notifications(args):
    """我的通知，新的在前；unread=true 只看未读；unread_count 为未读总数。"""
    return service.inbox_page(user=g.user, unread=args["unread"], limit=args["limit"], cursor=args["cursor"])


@blp.post("/notifications/read-all")
@access.signed_in
@blp.response(200, ReadAllSchema)
def read_all():
    """把我的通知全部标为已读。"""
    updated = service.mark_all_read(user=g.user)
    return {"updated": updated, "unread_count": service.unread_count(user=g.user)}


@blp.get("/notifications/templates")
@access.signed_in
@blp.response(200, TemplateListSchema)
def list_templates():
    """各类通知的微信订阅消息模板（小程序调用 wx.requestSubscribeMessage 时用其模板 ID）。"""
    return {"items": service.list_templates()}


@blp.put("/notifications/templates/<string:event>")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(TemplateWriteSchema)
@blp.response(200, TemplateSchema)
def update_template(args, event):
    """设置某类通知的模板 ID、关键词对应和开关（街道管理员）；系统默认值此后不再覆盖它。"""
    return service.update_template(actor=g.user, event=event, **args)


@blp.get("/notifications/subscriptions")
@access.signed_in
@blp.response(200, GrantListSchema)
def list_subscriptions():
    """我对各类通知剩余的一次性订阅次数。"""
    return {"items": service.list_grants(user=g.user)}


@blp.post("/notifications/subscriptions")
@access.signed_in
@blp.arguments(SubscribeSchema)
@blp.response(200, GrantListSchema)
@blp.doc(**idempotency.DOC)
def subscribe(args):
    """记录 wx.requestSubscribeMessage 的结果：每个 accept 多一次发送机会，ban 清空。
    带 Idempotency-Key 重试同一结果只记一次。"""

    def record() -> User:
        service.record_subscriptions(user=g.user, results=args["results"])
        return g.user  # what the answer changed: the caller's grants

    # WeChat grants one message per accept: a retried answer counted twice would promise one it never gave.
    idempotency.create_once("notifications.subscriptions", User, record)
    return {"items": service.list_grants(user=g.user)}


@blp.get("/notifications/<string:notification_id>")
@access.signed_in
@blp.response(200, NotificationSchema)
def get_notification(notification_id):
    """我的一条通知，含投递记录。"""
    return service.get_notification(user=g.user, public_id=notification_id)


@blp.post("/notifications/<string:notification_id>/read")
@access.signed_in
@blp.response(200, NotificationSchema)
def read(notification_id):
    """把我的一条通知标为已读。"""
    return service.mark_read(user=g.user, public_id=notification_id)
