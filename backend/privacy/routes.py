from flask import g

from backend.auth import access
from backend.auth.roles import Role, ScopeType
from backend.auth.service import get_user
from backend.extensions import Blueprint
from backend.pagination import page_schema
from backend.privacy import service
from backend.privacy.schemas import (
    AccessLogQuerySchema,
    AccessLogSchema,
    ConsentGrantSchema,
    ConsentListSchema,
    ConsentSchema,
    RevealedSchema,
    RevealSchema,
)

blp = Blueprint("privacy", __name__, description="个人信息保护：单独同意、脱敏与查看日志")

AccessLogPage = page_schema(AccessLogSchema, "AccessLogPage")


@blp.get("/me/consents")
@access.signed_in
@blp.response(200, ConsentListSchema)
def my_consents():
    """我的同意记录（含已撤回的）。"""
    return {"items": service.list_consents(user_id=g.user.id)}


@blp.post("/me/consents")
@access.signed_in
@blp.arguments(ConsentGrantSchema)
@blp.response(201, ConsentSchema)
def grant_consent(args):
    """对某类敏感个人信息的处理作出单独同意。"""
    return service.grant_consent(user_id=g.user.id, kind=args["kind"], text_version=args["text_version"])


@blp.delete("/me/consents/<string:kind>")
@access.signed_in
@blp.response(204)
def withdraw_consent(kind):
    """撤回同意；依赖该同意保存的信息随即删除。"""
    service.withdraw_consent(user=g.user, kind=kind)


@blp.post("/users/<string:user_id>/reveal")
@access.signed_in
@blp.arguments(RevealSchema)
@blp.response(200, RevealedSchema)
def reveal(args, user_id):
    """查看居民的完整敏感信息（本人、所在社区书记、街道管理员）；每次查看都记入日志。"""
    subject = get_user(user_id)
    value = service.reveal_user_field(
        actor=g.user, subject=subject, field=args["field"], reason=args["reason"]
    )
    return {"field": args["field"], "value": value}


@blp.get("/me/access-logs")
@access.signed_in
@blp.arguments(AccessLogQuerySchema, location="query")
@blp.response(200, AccessLogPage)
def my_access_logs(args):
    """谁在何时因何查看了我的敏感信息。"""
    return service.access_logs_page(subject_user_id=g.user.id, limit=args["limit"], cursor=args["cursor"])


@blp.get("/privacy/access-logs")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(AccessLogQuerySchema, location="query")
@blp.response(200, AccessLogPage)
def access_logs(args):
    """敏感信息查看日志（街道管理员）：本街道居民的信息被查看的记录。"""
    subject_id = get_user(args["user_id"]).id if args["user_id"] else None
    streets = g.principal.scope_ids(Role.STREET_ADMIN, ScopeType.STREET)
    return service.access_logs_page(
        subject_user_id=subject_id, limit=args["limit"], cursor=args["cursor"], street_ids=streets
    )
