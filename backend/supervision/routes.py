from flask import g

from backend.auth import access
from backend.auth.roles import Role
from backend.community.service import overseen_community_ids
from backend.errors import NotFound
from backend.extensions import Blueprint
from backend.pagination import PageArgs, page_schema
from backend.supervision import service
from backend.supervision.schemas import SupervisionCloseSchema, SupervisionQuerySchema, SupervisionSchema

blp = Blueprint("supervision", __name__, description="督办")

SupervisionPage = page_schema(SupervisionSchema, "SupervisionPage")


class SupervisionListArgs(PageArgs, SupervisionQuerySchema):
    pass


def _visible(public_id: str):
    record = service.get(public_id)
    if record.community_id not in overseen_community_ids(g.user):
        raise NotFound("督办记录不存在")
    return record


@blp.get("/supervisions")
@access.roles(Role.SECRETARY, Role.STREET_ADMIN)
@blp.arguments(SupervisionListArgs, location="query")
@blp.response(200, SupervisionPage)
def list_supervisions(args):
    """督办记录，新的在前（书记看本社区，街道管理员看全街道）。"""
    return service.records_page(
        community_ids=overseen_community_ids(g.user),
        status=args["status"],
        reason=args["reason"],
        limit=args["limit"],
        cursor=args["cursor"],
    )


@blp.get("/supervisions/<string:supervision_id>")
@access.roles(Role.SECRETARY, Role.STREET_ADMIN)
@blp.response(200, SupervisionSchema)
def get_supervision(supervision_id):
    """督办记录详情。"""
    return _visible(supervision_id)


@blp.post("/supervisions/<string:supervision_id>/close")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(SupervisionCloseSchema)
@blp.response(200, SupervisionSchema)
def close_supervision(args, supervision_id):
    """结束督办并写明结果（街道管理员）。"""
    return service.close(record=_visible(supervision_id), actor_id=g.user.id, resolution=args["resolution"])
