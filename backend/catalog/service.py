"""The service catalog: categories under the four service kinds, with their questions and SLA policy."""

import json
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend import localcache
from backend.catalog import questions as question_rules
from backend.catalog.models import ServiceCategory
from backend.db import autocommit, db, flush_unless_taken
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.sla import policies
from backend.sla.rules import SERVICE_KINDS, Policy


def list_categories(
    *, service_kind: str | None = None, include_disabled: bool = False
) -> list[ServiceCategory]:
    """Return the catalog in display order, optionally one kind's, enabled ones unless asked otherwise."""
    query = select(ServiceCategory).order_by(ServiceCategory.sort_order, ServiceCategory.id)
    if service_kind:
        query = query.where(ServiceCategory.service_kind == service_kind)
    if not include_disabled:
        query = query.where(ServiceCategory.enabled.is_(True))
    return list(db.session.scalars(query))


def get_category(code: str) -> ServiceCategory:
    category = db.session.scalar(select(ServiceCategory).where(ServiceCategory.code == code))
    if category is None:
        raise NotFound("服务分类不存在")
    return category


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """What placing and listing orders need of a category, without a database round trip."""

    id: int
    code: str
    name: str
    service_kind: str
    questions: tuple[dict, ...]
    enabled: bool


@dataclass(frozen=True, slots=True)
class Catalog:
    by_id: dict[int, CategoryInfo]
    by_code: dict[str, CategoryInfo]


_catalogs = localcache.LocalCache("catalog", max_entries=1, max_age=3600.0)
localcache.watch(ServiceCategory, _catalogs)
_CATALOG_COLUMNS = (
    ServiceCategory.id,
    ServiceCategory.code,
    ServiceCategory.name,
    ServiceCategory.service_kind,
    ServiceCategory.questions,
    ServiceCategory.enabled,
)


def _load_catalog() -> Catalog:
    with autocommit() as connection:
        rows = connection.execute(select(*_CATALOG_COLUMNS)).all()
    infos = [
        CategoryInfo(r.id, r.code, r.name, r.service_kind, tuple(r.questions or ()), r.enabled) for r in rows
    ]
    return Catalog({c.id: c for c in infos}, {c.code: c for c in infos})


def catalog() -> Catalog:
    """Every category, enabled or not, by id and by code (kept in the process until the catalog changes)."""
    return _catalogs.get("all", _load_catalog)


def policy_of(category: ServiceCategory | CategoryInfo) -> Policy:
    """The SLA policy in force for a category."""
    return policies.policy_for(service_kind=category.service_kind, category_code=category.code)


def _check_questions(questions: list[dict]) -> None:
    errors = question_rules.definition_errors(questions)
    if errors:
        raise ValidationFailed("问题设置有误", details={"questions": errors})


def create_category(
    *,
    code: str,
    name: str,
    service_kind: str,
    description: str = "",
    questions: list[dict] | None = None,
    sort_order: int = 0,
) -> ServiceCategory:
    """Add a category to the catalog; the caller commits."""
    if service_kind not in SERVICE_KINDS:
        raise ValidationFailed(details={"service_kind": ["服务类型无效"]})
    _check_questions(questions or [])
    category = ServiceCategory(
        code=code,
        name=name,
        service_kind=service_kind,
        description=description,
        questions=questions or [],
        sort_order=sort_order,
    )
    db.session.add(category)
    flush_unless_taken(Conflict("分类代码已存在", code="category_exists", details={"code": ["已存在"]}))
    return category


def update_category(*, category: ServiceCategory, changes: dict) -> ServiceCategory:
    """Change a category's name, kind, description, questions, order or whether it is offered.

    Orders already placed keep the answers they gave; new questions apply to new orders only.
    """
    if "questions" in changes:
        _check_questions(changes["questions"])
    for field in ("name", "service_kind", "description", "questions", "enabled", "sort_order"):
        if field in changes:
            setattr(category, field, changes[field])
    db.session.commit()
    return category


def load_catalog(entries: list[dict]) -> int:
    """Add the categories not yet in the catalog (by code); existing ones stay as the street edited them."""
    existing = set(db.session.scalars(select(ServiceCategory.code)))
    added = 0
    for order, entry in enumerate(entries):
        if entry["code"] in existing:
            continue
        _check_questions(entry.get("questions", []))
        db.session.add(
            ServiceCategory(
                code=entry["code"],
                name=entry["name"],
                service_kind=entry["service_kind"],
                description=entry.get("description", ""),
                questions=entry.get("questions", []),
                sort_order=entry.get("sort_order", order * 10),
            )
        )
        added += 1
    db.session.commit()
    return added


def seed_shipped_catalog() -> int:
    """Load the shipped catalog into an empty one (a fresh install); return the categories added.

    Only into an empty catalog: one with any category in it is the street's own, and a category an admin
    renamed, turned off or removed is neither put back nor joined by the shipped ones.
    """
    if db.session.scalar(select(ServiceCategory.id).limit(1)) is not None:
        return 0
    try:
        return load_catalog(shipped_catalog())
    except IntegrityError:  # another `sandan migrate` loaded it at the same moment: theirs is the same
        db.session.rollback()
        return 0


def shipped_catalog() -> list[dict]:
    """The starting catalog shipped with the product (`sandan migrate` loads it into an empty catalog; the
    demo and the benchmarks use it too)."""
    text = resources.files("backend").joinpath("seed", "catalog.json").read_text(encoding="utf-8")
    return json.loads(text)["categories"]
