from flask import g

from backend.auth import access, service
from backend.auth.roles import Role
from backend.auth.schemas import (
    GrantRoleSchema,
    LoginSchema,
    MembershipListItemSchema,
    MembershipQuerySchema,
    MembershipSchema,
    PhoneBindSchema,
    ProfileUpdateSchema,
    RefreshSchema,
    ResidenceSchema,
    TokenPairSchema,
    UserSchema,
)
from backend.extensions import Blueprint
from backend.pagination import PageArgs, page_schema

blp = Blueprint("auth", __name__, description="微信登录、令牌与个人信息")

MembershipPage = page_schema(MembershipListItemSchema, "MembershipPage")


class MembershipListArgs(MembershipQuerySchema, PageArgs):
    pass


@blp.post("/auth/login")
@access.public
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
def login(args):
    """用 wx.login 的 code 登录，换取访问令牌与刷新令牌。"""
    return service.login_with_wechat_code(code=args["code"], nickname=args["nickname"])


@blp.post("/auth/refresh")
@access.public
@blp.arguments(RefreshSchema)
@blp.response(200, TokenPairSchema)
def refresh(args):
    """用刷新令牌换一对新令牌（旧刷新令牌随即失效）。"""
    return service.refresh_session(refresh_token=args["refresh_token"])


@blp.post("/auth/logout")
@access.signed_in
@blp.response(204)
def logout():
    """注销当前登录：此会话的所有令牌立即失效。"""
    service.revoke_session(session_public_id=g.principal.session_public_id)


@blp.get("/me")
@access.signed_in
@blp.response(200, UserSchema)
def me():
    """当前用户（敏感信息已脱敏）。"""
    return g.user


@blp.patch("/me")
@access.signed_in
@blp.arguments(ProfileUpdateSchema)
@blp.response(200, UserSchema)
def update_me(args):
    """更新实名信息；填写身份证号前须先同意 id_number。"""
    return service.update_profile(user=g.user, **args)


@blp.post("/me/phone")
@access.signed_in
@blp.arguments(PhoneBindSchema)
@blp.response(200, UserSchema)
def bind_phone(args):
    """用 getPhoneNumber 的 code 绑定手机号；须先同意 phone。"""
    return service.bind_phone(user=g.user, phone_code=args["code"])


@blp.post("/me/residence")
@access.signed_in
@blp.arguments(ResidenceSchema)
@blp.response(200, UserSchema)
def register_residence(args):
    """登记为某网格的居民。"""
    return service.register_residence(user=g.user, grid_public_id=args["grid_id"])


@blp.delete("/me/residence/<string:grid_id>")
@access.signed_in
@blp.response(204)
def leave_residence(grid_id):
    """注销在某网格的居住登记（搬离时）；该社区工作人员随即不能再凭此查看本人信息，已下的工单、代办照旧保留。"""
    service.leave_residence(user=g.user, grid_public_id=grid_id)


@blp.post("/memberships")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(GrantRoleSchema)
@blp.response(201, MembershipSchema)
def grant_role(args):
    """街道管理员在本街道范围内授予角色。"""
    return service.grant_role_by_admin(
        actor=g.user,
        user_public_id=args["user_id"],
        role=args["role"],
        scope_type=args["scope_type"],
        scope_public_id=args["scope_id"],
    )


@blp.get("/memberships")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(MembershipListArgs, location="query")
@blp.response(200, MembershipPage)
def list_memberships(args):
    """本街道的任职名单（街道管理员）：谁在街道、社区、网格、社会组织担任什么角色。

    手机号脱敏；可按角色、社区（含其网格）、网格、社会组织筛选；撤销角色用各行的 id。
    """
    return service.memberships_page(
        viewer=g.principal,
        role=args["role"],
        community_public_id=args["community_id"],
        grid_public_id=args["grid_id"],
        organization_public_id=args["organization_id"],
        limit=args["limit"],
        cursor=args["cursor"],
    )


@blp.delete("/memberships/<string:membership_id>")
@access.roles(Role.STREET_ADMIN)
@blp.response(204)
def revoke_role(membership_id):
    """街道管理员撤销本街道范围内的角色（任职记录的 id 见授予时的应答或任职列表）。

    不能撤销本街道最后一位街道管理员（409 last_street_admin）。
    志愿者还有本组织未办结的工单时，不能撤销其志愿者角色
    （409 volunteer_busy，与移出名册相同，details.orders 列出工单号）。
    代办员手上还有该范围内未办结的代办、且没有其他代办员角色覆盖时不能撤销
    （409 agent_busy，details.errands 列出代办编号），须先改派。
    """
    service.revoke_role(actor=g.user, membership_public_id=membership_id)
