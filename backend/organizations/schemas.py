import marshmallow as ma

from backend.auth.service import user_public_id
from backend.fields import PublicId, Text


class OrganizationSchema(ma.Schema):
    id = PublicId()
    name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    capacity = ma.fields.Integer(dump_only=True)
    street_id = ma.fields.Function(lambda o: _street_public_id(o.street_id), dump_only=True)
    community_ids = ma.fields.Function(lambda o: [c.public_id for c in o.communities], dump_only=True)
    categories = ma.fields.List(ma.fields.String(), attribute="category_codes", dump_only=True)


def _street_public_id(street_id: int) -> str:
    from backend.community.models import Street
    from backend.db import db

    return db.session.get(Street, street_id).public_id


class OrganizationWriteSchema(ma.Schema):
    name = Text(required=True, validate=ma.validate.Length(min=1, max=128))
    description = Text(load_default="", validate=ma.validate.Length(max=2000))
    capacity = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=10000))
    community_ids = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=24)),
        required=True,
        validate=ma.validate.Length(min=1, max=100),
    )
    categories = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=64)),
        load_default=list,
        validate=ma.validate.Length(max=100),
    )


class OrganizationUpdateSchema(ma.Schema):
    description = Text(validate=ma.validate.Length(max=2000))
    capacity = ma.fields.Integer(validate=ma.validate.Range(min=1, max=10000))
    categories = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=64)), validate=ma.validate.Length(max=100)
    )


class OrganizationQuerySchema(ma.Schema):
    community_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=24))
    category = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))


class VolunteerSchema(ma.Schema):
    id = PublicId()
    user_id = ma.fields.Function(lambda v: user_public_id(v.user_id), dump_only=True)
    display_name = ma.fields.String(dump_only=True)
    skills = ma.fields.String(dump_only=True)


class VolunteerCreateSchema(ma.Schema):
    user_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=24))
    display_name = Text(required=True, validate=ma.validate.Length(min=1, max=64))
    skills = Text(
        load_default=None,
        validate=ma.validate.Length(max=500),
        metadata={"description": "技能特长；再次添加已在册（或曾在册）的志愿者时，不填则保留原来的"},
    )
