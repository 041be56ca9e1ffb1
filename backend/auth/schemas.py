import marshmallow as ma

from backend.auth.roles import ROLE_LABELS, Role, ScopeType
from backend.fields import LocalDateTime, Masked, PublicId, Text, valid_id_number


class LoginSchema(ma.Schema):
    code = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=128),
        metadata={"description": "wx.login 的 code"},
    )
    nickname = Text(load_default=None, validate=ma.validate.Length(max=64))


class RefreshSchema(ma.Schema):
    refresh_token = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=256))


class PhoneBindSchema(ma.Schema):
    code = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=128),
        metadata={"description": "getPhoneNumber 返回的 code"},
    )


class ProfileUpdateSchema(ma.Schema):
    real_name = Text(validate=ma.validate.Length(min=1, max=64))
    id_number = ma.fields.String(
        validate=valid_id_number,
        metadata={"description": "需先同意 id_number 类敏感信息处理"},
    )


class MembershipSchema(ma.Schema):
    id = PublicId()
    role = ma.fields.String(dump_only=True)
    role_label = ma.fields.Function(lambda m: ROLE_LABELS[Role(m.role)], dump_only=True)
    scope_type = ma.fields.String(dump_only=True)
    scope_id = ma.fields.Function(lambda m: scope_public_id(m.scope_type, m.scope_id), dump_only=True)


def scope_public_id(scope_type: str, scope_id: int) -> str | None:
    from backend.auth.service import scope_public_id as lookup

    return lookup(scope_type, scope_id)


class UserSchema(ma.Schema):
    id = PublicId()
    nickname = ma.fields.String(dump_only=True)
    real_name = ma.fields.String(dump_only=True)
    phone = Masked("phone")
    id_number = Masked("id_number")
    roles = ma.fields.List(ma.fields.Nested(MembershipSchema), attribute="memberships", dump_only=True)
    created_at = LocalDateTime(dump_only=True)


class TokenPairSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True)
    expires_in = ma.fields.Integer(required=True, metadata={"description": "秒"})
    refresh_token = ma.fields.String(required=True)
    refresh_expires_in = ma.fields.Integer(required=True)
    user = ma.fields.Nested(UserSchema, required=True)


class GrantRoleSchema(ma.Schema):
    user_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=24))
    role = ma.fields.Enum(Role, by_value=True, required=True)
    scope_type = ma.fields.Enum(ScopeType, by_value=True, required=True)
    scope_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=24))


class ResidenceSchema(ma.Schema):
    grid_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=24))


class MembershipQuerySchema(ma.Schema):
    role = ma.fields.Enum(Role, by_value=True, load_default=None)
    community_id = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(min=1, max=24),
        metadata={"description": "只看该社区（含其网格）的任职"},
    )
    grid_id = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=24))
    organization_id = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=24))


class MemberSchema(ma.Schema):
    id = PublicId()
    nickname = ma.fields.String(dump_only=True)
    real_name = ma.fields.String(dump_only=True)
    phone = Masked("phone")


class MembershipListItemSchema(ma.Schema):
    id = PublicId()
    role = ma.fields.String(dump_only=True)
    role_label = ma.fields.Function(lambda m: ROLE_LABELS[Role(m.role)], dump_only=True)
    scope_type = ma.fields.String(dump_only=True)
    scope_id = ma.fields.String(attribute="scope_public_id", dump_only=True)
    scope_name = ma.fields.String(dump_only=True)
    user = ma.fields.Nested(MemberSchema, dump_only=True)
    created_at = LocalDateTime(dump_only=True)
