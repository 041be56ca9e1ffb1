import marshmallow as ma

from backend.fields import Masked, PublicId, Text


class GridSchema(ma.Schema):
    id = PublicId()
    name = ma.fields.String(dump_only=True)


class CommunitySchema(ma.Schema):
    id = PublicId()
    name = ma.fields.String(dump_only=True)
    street_id = ma.fields.Function(lambda c: c.street.public_id, dump_only=True)
    grids = ma.fields.List(ma.fields.Nested(GridSchema), dump_only=True)


class StreetSchema(ma.Schema):
    id = PublicId()
    name = ma.fields.String(dump_only=True)


class StreetListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(StreetSchema), required=True)


class CommunityListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CommunitySchema), required=True)


class CommunityQuerySchema(ma.Schema):
    street_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=24))


class CommunityCreateSchema(ma.Schema):
    street_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=24))
    name = Text(required=True, validate=ma.validate.Length(min=1, max=64))


class GridCreateSchema(ma.Schema):
    name = Text(required=True, validate=ma.validate.Length(min=1, max=64))


class ResidentSchema(ma.Schema):
    id = PublicId()
    nickname = ma.fields.String(dump_only=True)
    real_name = ma.fields.String(dump_only=True)
    phone = Masked("phone")
    grid_id = ma.fields.String(
        attribute="grid_public_id", dump_only=True, metadata={"description": "所列网格中居住的网格"}
    )


class AgentSchema(ma.Schema):
    id = PublicId()
    name = ma.fields.Function(lambda u: u.real_name or u.nickname, dump_only=True)


class AgentListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AgentSchema), required=True)
