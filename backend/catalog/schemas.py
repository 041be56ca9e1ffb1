import marshmallow as ma

from backend.catalog.questions import DATATYPE_LABELS, DATATYPES, LARGEST
from backend.fields import PublicId, Text
from backend.sla.rules import SERVICE_KINDS
from backend.sla.schemas import PolicySchema

# \Z, not $: $ also matches before a final newline, which would become part of the code.
CODE = ma.validate.Regexp(r"^[a-z][a-z0-9_]{0,63}\Z", error="代码应为小写字母开头的字母、数字或下划线")


NUMBER_RANGE = ma.validate.Range(-LARGEST, LARGEST)


class ChoiceSchema(ma.Schema):
    key = ma.fields.String(required=True, validate=CODE)
    label = Text(required=True, validate=ma.validate.Length(min=1, max=50))


class QuestionSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=CODE)
    label = Text(required=True, validate=ma.validate.Length(min=1, max=50))
    datatype = ma.fields.String(required=True, validate=ma.validate.OneOf(DATATYPES))
    datatype_label = ma.fields.Function(lambda q: DATATYPE_LABELS[q["datatype"]], dump_only=True)
    required = ma.fields.Boolean(load_default=False)
    choices = ma.fields.List(
        ma.fields.Nested(ChoiceSchema), load_default=list, validate=ma.validate.Length(max=30)
    )
    hint = Text(load_default="", validate=ma.validate.Length(max=100))
    # A number question's range (面积 at least 1, 年龄 0 to 130); either side may be open.
    min = ma.fields.Float(allow_none=True, validate=NUMBER_RANGE, metadata={"description": "数字题的最小值"})
    max = ma.fields.Float(allow_none=True, validate=NUMBER_RANGE, metadata={"description": "数字题的最大值"})


class CategorySchema(ma.Schema):
    id = PublicId()
    code = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    service_kind = ma.fields.String(dump_only=True)
    service_kind_label = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    questions = ma.fields.List(ma.fields.Nested(QuestionSchema), dump_only=True)
    enabled = ma.fields.Boolean(dump_only=True)
    sort_order = ma.fields.Integer(dump_only=True)
    policy = ma.fields.Method("_policy", dump_only=True, metadata={"description": "该分类现行的办理时限"})

    def _policy(self, category):
        from backend.catalog.service import policy_of

        return PolicySchema().dump(policy_of(category))


class CategoryListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CategorySchema), required=True)


class CategoryQuerySchema(ma.Schema):
    service_kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(SERVICE_KINDS))
    include_disabled = ma.fields.Boolean(
        load_default=False, metadata={"description": "连同已停用的分类（管理员重新启用时用）"}
    )


class CategoryCreateSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=CODE)
    name = Text(required=True, validate=ma.validate.Length(min=1, max=64))
    service_kind = ma.fields.String(required=True, validate=ma.validate.OneOf(SERVICE_KINDS))
    description = Text(load_default="", validate=ma.validate.Length(max=1000))
    questions = ma.fields.List(
        ma.fields.Nested(QuestionSchema), load_default=list, validate=ma.validate.Length(max=20)
    )
    sort_order = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=100000))


class CategoryUpdateSchema(ma.Schema):
    name = Text(validate=ma.validate.Length(min=1, max=64))
    service_kind = ma.fields.String(validate=ma.validate.OneOf(SERVICE_KINDS))
    description = Text(validate=ma.validate.Length(max=1000))
    questions = ma.fields.List(ma.fields.Nested(QuestionSchema), validate=ma.validate.Length(max=20))
    enabled = ma.fields.Boolean()
    sort_order = ma.fields.Integer(validate=ma.validate.Range(min=0, max=100000))
