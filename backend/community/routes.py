from flask import g

from backend import idempotency
from backend.auth import access
from backend.auth.roles import Role
from backend.community import service
from backend.community.models import Community, Grid
from backend.community.schemas import (
    AgentListSchema,
    CommunityCreateSchema,
    CommunityListSchema,
    CommunityQuerySchema,
    CommunitySchema,
    GridCreateSchema,
    GridSchema,
    ResidentSchema,
    StreetListSchema,
)
from backend.extensions import Blueprint
from backend.pagination import PageArgs, page_schema

blp = Blueprint("community", __name__, description="街道、社区与网格")

ResidentPage = page_schema(ResidentSchema, "ResidentPage")


@blp.get("/streets")
@access.signed_in
@blp.response(200, StreetListSchema)
def list_streets():
    """街道列表。"""
    return {"items": service.list_streets()}


@blp.get("/communities")
@access.signed_in
@blp.arguments(CommunityQuerySchema, location="query")
@blp.response(200, CommunityListSchema)
def list_communities(args):
    """社区列表（含网格），可按街道筛选。"""
    street_id = service.get_street(args["street_id"]).id if args["street_id"] else None
    return {"items": service.list_communities(street_id=street_id)}


@blp.post("/communities")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(CommunityCreateSchema)
@blp.response(201, CommunitySchema)
@blp.doc(**idempotency.DOC)
def create_community(args):
    """新建社区（本街道管理员）。带 Idempotency-Key 重试不会重复。"""
    street = service.get_street(args["street_id"])
    return idempotency.create_once(
        "communities",
        Community,
        lambda: service.create_community(actor=g.user, street=street, name=args["name"]),
    )


@blp.get("/communities/<string:community_id>")
@access.signed_in
@blp.response(200, CommunitySchema)
def get_community(community_id):
    """社区详情（含网格）。"""
    return service.get_community(community_id)


@blp.post("/communities/<string:community_id>/grids")
@access.roles(Role.SECRETARY, Role.STREET_ADMIN, scope=service.community_scope())
@blp.arguments(GridCreateSchema)
@blp.response(201, GridSchema)
@blp.doc(**idempotency.DOC)
def create_grid(args, community_id):
    """在社区内新建网格（社区书记或街道管理员）。带 Idempotency-Key 重试不会重复。"""
    community = service.get_community(community_id)
    return idempotency.create_once(
        f"communities/{community.public_id}/grids",
        Grid,
        lambda: service.create_grid(community=community, name=args["name"]),
    )


@blp.get("/communities/<string:community_id>/residents")
@access.roles(Role.SECRETARY, Role.STREET_ADMIN, scope=service.community_scope())
@blp.arguments(PageArgs, location="query")
@blp.response(200, ResidentPage)
def list_residents(args, community_id):
    """社区居民名单（手机号脱敏）。"""
    community = service.get_community(community_id)
    return service.residents_page(community=community, limit=args["limit"], cursor=args["cursor"])


@blp.get("/grids/<string:grid_id>/residents")
@access.roles(Role.GRID_WORKER, Role.SECRETARY, Role.STREET_ADMIN, scope=service.grid_scope())
@blp.arguments(PageArgs, location="query")
@blp.response(200, ResidentPage)
def list_grid_residents(args, grid_id):
    """网格居民名单（本网格网格员、社区书记或街道管理员；手机号脱敏），代录时选择居民。"""
    grid = service.get_grid(grid_id)
    return service.residents_page(grid=grid, limit=args["limit"], cursor=args["cursor"])


@blp.get("/communities/<string:community_id>/agents")
@access.roles(Role.SECRETARY, Role.STREET_ADMIN, scope=service.community_scope())
@blp.response(200, AgentListSchema)
def list_agents(community_id):
    """社区的代办员名单（书记指派代办时选择）。"""
    return {"items": service.proxy_agents(community=service.get_community(community_id))}
