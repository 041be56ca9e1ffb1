"""SLA policies as the street has set them: the defaults, overridden per service kind or per category."""

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend import clock
from backend.db import db
from backend.errors import NotFound, ValidationFailed
from backend.sla.calendar import Unit
from backend.sla.models import SlaPolicyOverride
from backend.sla.rules import DEFAULT_POLICIES, SERVICE_KINDS, UNIT_LABELS, Limit, Policy

# Limit name in the API → column prefix in the table.
LIMIT_COLUMNS = {
    "accept": "accept",
    "complete": "complete",
    "extension": "extension",
    "return_within": "return",
}


def _limit(amount: Decimal | None, unit: str | None) -> Limit | None:
    return None if amount is None or unit is None else Limit(amount, Unit(unit))


def _policy(row: SlaPolicyOverride) -> Policy:
    return Policy(
        accept=_limit(row.accept_amount, row.accept_unit),
        complete=_limit(row.complete_amount, row.complete_unit),
        extension=_limit(row.extension_amount, row.extension_unit),
        return_within=_limit(row.return_amount, row.return_unit),
    )


def _check_kind(kind: str) -> str:
    if kind not in SERVICE_KINDS:
        raise NotFound("服务类型不存在", details={"service_kind": [f"应为 {', '.join(SERVICE_KINDS)} 之一"]})
    return kind


def _override(kind: str, category_code: str) -> SlaPolicyOverride | None:
    return db.session.scalar(
        select(SlaPolicyOverride).where(
            SlaPolicyOverride.service_kind == kind, SlaPolicyOverride.category_code == category_code
        )
    )


def policy_for(*, service_kind: str, category_code: str | None = None) -> Policy:
    """Return the policy in force: the category's override, else the kind's, else the default."""
    _check_kind(service_kind)
    codes = [category_code, ""] if category_code else [""]
    rows = {
        row.category_code: row
        for row in db.session.scalars(
            select(SlaPolicyOverride).where(
                SlaPolicyOverride.service_kind == service_kind, SlaPolicyOverride.category_code.in_(codes)
            )
        )
    }
    for code in codes:
        if code in rows:
            return _policy(rows[code])
    return DEFAULT_POLICIES[service_kind]


def list_policies() -> list[dict]:
    """Return each kind's policy in force and every category override, with where each came from."""
    overrides = list(
        db.session.scalars(
            select(SlaPolicyOverride).order_by(
                SlaPolicyOverride.service_kind, SlaPolicyOverride.category_code
            )
        )
    )
    kind_rows = {row.service_kind: row for row in overrides if not row.category_code}
    items = []
    for kind in SERVICE_KINDS:
        row = kind_rows.get(kind)
        items.append(
            {
                "service_kind": kind,
                "category_code": None,
                "source": "override" if row else "default",
                "policy": _policy(row) if row else DEFAULT_POLICIES[kind],
                "updated_at": row.updated_at if row else None,
            }
        )
    for row in overrides:
        if row.category_code:
            items.append(
                {
                    "service_kind": row.service_kind,
                    "category_code": row.category_code,
                    "source": "override",
                    "policy": _policy(row),
                    "updated_at": row.updated_at,
                }
            )
    return items


def _to_limit(value: dict | None, field: str) -> Limit | None:
    if value is None:
        return None
    try:
        return Limit(value["amount"], Unit(value["unit"]))
    except ValueError as exc:
        raise ValidationFailed(details={field: [f"时限无效：{exc}"]}) from exc


def set_policy(
    *, actor_id: int, service_kind: str, category_code: str | None, limits: dict[str, dict | None]
) -> Policy:
    """Set the time limits of a kind (``category_code`` None) or of one category."""
    _check_kind(service_kind)
    if category_code is not None:
        _check_category(category_code)
    parsed = {name: _to_limit(limits.get(name), name) for name in LIMIT_COLUMNS}
    for name in ("accept", "complete"):
        if parsed[name] is None:
            raise ValidationFailed(details={name: ["签收和办结时限不能为空"]})
    # An extension is added to the completion clock's own amount, so it must count in the same unit.
    if parsed["extension"] is not None and parsed["extension"].unit != parsed["complete"].unit:
        unit = UNIT_LABELS[parsed["complete"].unit].removeprefix("个")
        raise ValidationFailed(details={"extension": [f"延期时限须与办结时限同样按{unit}计算"]})
    code = category_code or ""
    row = _override(service_kind, code)
    if row is None:
        try:
            with db.session.begin_nested():
                row = _filled(
                    SlaPolicyOverride(service_kind=service_kind, category_code=code), parsed, actor_id
                )
                db.session.add(row)
        except IntegrityError:
            # The same save a moment earlier (a double click) created the override first: set it as well.
            row = _filled(_override(service_kind, code), parsed, actor_id)
    else:
        _filled(row, parsed, actor_id)
    db.session.commit()
    return _policy(row)


def _check_category(code: str) -> None:
    """A category's rule names a category of the catalog (turned off or not), or it would never apply. Its
    kind may differ from the category's own: a secretary may accept an order under another kind."""
    from backend.catalog.service import catalog  # the catalog reads its policies from here

    if code not in catalog().by_code:
        raise ValidationFailed("服务分类不存在", details={"category_code": ["服务目录中没有该分类"]})


def _filled(row: SlaPolicyOverride, parsed: dict[str, Limit | None], actor_id: int) -> SlaPolicyOverride:
    for name, limit in parsed.items():
        setattr(row, f"{LIMIT_COLUMNS[name]}_amount", None if limit is None else limit.amount)
        setattr(row, f"{LIMIT_COLUMNS[name]}_unit", None if limit is None else str(limit.unit))
    row.updated_by_id = actor_id
    row.updated_at = clock.now()
    return row


def reset_policy(*, service_kind: str, category_code: str | None) -> None:
    """Drop an override so the kind's (or the default) policy applies again."""
    _check_kind(service_kind)
    row = _override(service_kind, category_code or "")
    if row is None:
        raise NotFound("没有该项的自定义时限")
    db.session.delete(row)
    db.session.commit()
