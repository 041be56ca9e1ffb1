from backend import idempotency
from backend.auth import access
from backend.auth.roles import Role
from backend.catalog import service
from backend.catalog.models import ServiceCategory
from backend.catalog.schemas import (
    CategoryCreateSchema,
    CategoryListSchema,
    CategoryQuerySchema,
    CategorySchema,
    CategoryUpdateSchema,
)
from backend.extensions import Blueprint

blp = Blueprint("catalog", __name__, description="服务目录")


@blp.get("/catalog/categories")
@access.public
@blp.arguments(CategoryQuerySchema, location="query")
@blp.response(200, CategoryListSchema)
def list_categories(args):
    """可点单的服务分类（含问题和办理时限），可按服务类型筛选；include_disabled=true 连同已停用的。"""
    return {
        "items": service.list_categories(
            service_kind=args["service_kind"], include_disabled=args["include_disabled"]
        )
    }


@blp.get("/catalog/categories/<string:code>")
@access.public
@blp.response(200, CategorySchema)
def get_category(code):
    """服务分类详情。"""
    return service.get_category(code)


@blp.post("/catalog/categories")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(CategoryCreateSchema)
@blp.response(201, CategorySchema)
@blp.doc(**idempotency.DOC)
def create_category(args):
    """新增服务分类（街道管理员）。带 Idempotency-Key 重试不会重复。"""
    return idempotency.create_once(
        "catalog/categories", ServiceCategory, lambda: service.create_category(**args)
    )


@blp.patch("/catalog/categories/<string:code>")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(CategoryUpdateSchema)
@blp.response(200, CategorySchema)
def update_category(args, code):
    """修改服务分类，或停用/启用（街道管理员）。已点的单不受影响。"""
    return service.update_category(category=service.get_category(code), changes=args)
