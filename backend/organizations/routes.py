from flask import g

from backend import idempotency
from backend.auth import access
from backend.auth.roles import Role
from backend.community.service import get_community, get_street
from backend.extensions import Blueprint
from backend.organizations import service
from backend.organizations.models import Organization
from backend.organizations.schemas import (
    OrganizationQuerySchema,
    OrganizationSchema,
    OrganizationUpdateSchema,
    OrganizationWriteSchema,
    VolunteerCreateSchema,
    VolunteerSchema,
)
from backend.pagination import page_schema

blp = Blueprint("organizations", __name__, description="社会组织与志愿者")

OrganizationPage = page_schema(OrganizationSchema, "OrganizationPage")
VolunteerList = page_schema(VolunteerSchema, "VolunteerList")


@blp.get("/organizations")
@access.signed_in
@blp.arguments(OrganizationQuerySchema, location="query")
@blp.response(200, OrganizationPage)
def list_organizations(args):
    """社会组织列表，可按社区、服务类别筛选。"""
    community_id = get_community(args["community_id"]).id if args["community_id"] else None
    return service.organizations_page(
        community_id=community_id, category=args["category"], limit=args["limit"], cursor=args["cursor"]
    )


@blp.post("/streets/<string:street_id>/organizations")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(OrganizationWriteSchema)
@blp.response(201, OrganizationSchema)
@blp.doc(**idempotency.DOC)
def create_organization(args, street_id):
    """登记社会组织（本街道管理员）。带 Idempotency-Key 重试不会重复。"""
    street = get_street(street_id)
    return idempotency.create_once(
        f"streets/{street.public_id}/organizations",
        Organization,
        lambda: service.create_organization(actor=g.user, street=street, **args),
    )


@blp.get("/organizations/<string:organization_id>")
@access.signed_in
@blp.response(200, OrganizationSchema)
def get_organization(organization_id):
    """社会组织详情。"""
    return service.get_organization(organization_id)


@blp.patch("/organizations/<string:organization_id>")
@access.roles(Role.ORG_ADMIN, Role.STREET_ADMIN, scope=service.organization_scope())
@blp.arguments(OrganizationUpdateSchema)
@blp.response(200, OrganizationSchema)
def update_organization(args, organization_id):
    """修改组织简介、承接能力、服务类别（本组织管理员或街道管理员）。"""
    return service.update_organization(org=service.get_organization(organization_id), **args)


@blp.get("/organizations/<string:organization_id>/volunteers")
@access.roles(Role.ORG_ADMIN, Role.STREET_ADMIN, scope=service.organization_scope())
@blp.response(200, VolunteerList)
def list_volunteers(organization_id):
    """志愿者名册。"""
    return {
        "items": service.list_volunteers(org=service.get_organization(organization_id)),
        "next_cursor": None,
    }


@blp.post("/organizations/<string:organization_id>/volunteers")
@access.roles(Role.ORG_ADMIN, scope=service.organization_scope())
@blp.arguments(VolunteerCreateSchema)
@blp.response(201, VolunteerSchema)
def add_volunteer(args, organization_id):
    """把用户加入志愿者名册并授予志愿者角色（本组织管理员）；已在册或曾在册的，按本次填写更新称呼（及技能）。"""
    return service.add_volunteer(
        org=service.get_organization(organization_id),
        user_public_id=args["user_id"],
        display_name=args["display_name"],
        skills=args["skills"],
    )


@blp.delete("/organizations/<string:organization_id>/volunteers/<string:volunteer_id>")
@access.roles(Role.ORG_ADMIN, Role.STREET_ADMIN, scope=service.organization_scope())
@blp.response(204)
def remove_volunteer(organization_id, volunteer_id):
    """把志愿者移出名册（本组织管理员或街道管理员）：还有未办结的工单时拒绝（409，列出工单编号）；移出后看不到
    本组织的工单、不能再被指派，已办的工单仍记着他；再次添加即恢复。"""
    service.remove_volunteer(org=service.get_organization(organization_id), volunteer_public_id=volunteer_id)
