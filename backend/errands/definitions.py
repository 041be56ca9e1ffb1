"""An errand type's definition (one version of it) as data, and the check every definition passes.

Pure: no Flask, no database. A definition is a JSON object:

    {"name": "低保申请", "description": "...", "office": "户籍所在地街道办事处社会救助窗口",
     "materials": [{"code": "id_copy", "name": "身份证复印件", "required": true, "note": ""},
                   {"code": "disability_papers", "name": "残疾证或诊断证明", "required": false,
                    "condition": "家庭成员有残疾或重病时", "note": ""}],
     "steps": [{"state": "appointed", "name": "社区受理", "owner": "secretary",
                "limit": {"amount": 2, "unit": "working_days"}}, ...],
     "result": {"description": "批准（月保障金额）或不予批准（理由）", "fields": ["amount_fen"]},
     "sensitive_fields": ["id_number", "subsistence_status"],
     "money": false, "public_notice": true,
     "reminder": {"amount": 1, "unit": "working_days", "times": 3}}

Steps name the pipeline's clocked states (errands.states.CLOCKED_STATES); a state without a step runs
without a clock. ``money`` turns on the cash and receipt rules of a purchase (代购).
"""

from decimal import Decimal, InvalidOperation

from backend.errands.states import CLOCKED_STATES, STEP_OWNERS

UNITS = ("working_days", "working_hours", "hours")
# A purchase's drug list (代购药品清单): health information, held by every type with ``money`` on (the list is
# what is bought), so a definition does not name it among its sensitive_fields.
PURCHASE_ITEMS = "items"
# Sensitive values an errand may hold, and the privacy kind (consent, mask) each belongs to.
SENSITIVE_FIELDS = {
    "id_number": "id_number",
    "disability": "disability",
    "diagnosis": "health",
    "subsistence_status": "subsistence",
    "insurance_card": "insurance_card",
    # The disability certificate's number contains the ID number: as sensitive as it.
    "certificate_number": "id_number",
    PURCHASE_ITEMS: "health",
}
# The ones a definition lists in its sensitive_fields.
DECLARED_SENSITIVE_FIELDS = tuple(f for f in SENSITIVE_FIELDS if f != PURCHASE_ITEMS)
SENSITIVE_LABELS = {
    "id_number": "身份证号",
    "disability": "残疾情况",
    "diagnosis": "诊断",
    "subsistence_status": "低保状态",
    "insurance_card": "医保卡号",
    "certificate_number": "证书编号",
    PURCHASE_ITEMS: "药品清单",
}
RESULT_FIELDS = ("amount_fen", "certificate_number", "valid_until")
MAX_MATERIALS, MAX_TEXT = 30, 500


def _text(value, *, required: bool, limit: int = MAX_TEXT) -> str | None:
    if value is None or value == "":
        return "必填" if required else None
    if not isinstance(value, str):
        return "应为文字"
    if len(value) > limit:
        return f"不能超过 {limit} 个字"
    return None


def _limit_error(limit) -> str | None:
    if not isinstance(limit, dict) or set(limit) != {"amount", "unit"}:
        return "时限应为 {amount, unit}"
    if limit["unit"] not in UNITS:
        return f"单位应为 {', '.join(UNITS)} 之一"
    try:
        amount = Decimal(str(limit["amount"]))
    except InvalidOperation:
        return "时长应为数字"
    if isinstance(limit["amount"], bool) or not amount.is_finite() or amount <= 0 or amount > 365:
        return "时长应大于 0 且不超过 365"
    if limit["unit"] == "working_days" and amount != amount.to_integral_value():
        return "工作日须为整数"
    return None


def check(definition) -> dict[str, list[str]]:
    """Return the problems of a definition by field (empty when it is usable)."""
    if not isinstance(definition, dict):
        return {"definition": ["应为对象"]}
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for field, required, limit in (("name", True, 64), ("description", False, 1000), ("office", True, 200)):
        if problem := _text(definition.get(field), required=required, limit=limit):
            add(field, problem)
    materials = definition.get("materials")
    if not isinstance(materials, list) or not materials or len(materials) > MAX_MATERIALS:
        add("materials", f"应列出 1 至 {MAX_MATERIALS} 项材料")
    else:
        seen: set[str] = set()
        for i, item in enumerate(materials):
            where = f"materials.{i}"
            if not isinstance(item, dict):
                add(where, "应为对象")
                continue
            code = item.get("code")
            if not isinstance(code, str) or not code.isidentifier() or len(code) > 64:
                add(where + ".code", "应为英文标识")
            elif code in seen:
                add(where + ".code", "重复")
            else:
                seen.add(code)
            if problem := _text(item.get("name"), required=True, limit=64):
                add(where + ".name", problem)
            if not isinstance(item.get("required"), bool):
                add(where + ".required", "应为 true 或 false")
            elif not item["required"] and _text(item.get("condition"), required=True):
                add(where + ".condition", "非必需的材料须写明何时需要")
            if problem := _text(item.get("note"), required=False):
                add(where + ".note", problem)
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        add("steps", "应至少有一个步骤")
    else:
        seen_states: set[str] = set()
        for i, step in enumerate(steps):
            where = f"steps.{i}"
            if not isinstance(step, dict):
                add(where, "应为对象")
                continue
            if step.get("state") not in CLOCKED_STATES:
                add(where + ".state", f"应为 {', '.join(CLOCKED_STATES)} 之一")
            elif step["state"] in seen_states:
                add(where + ".state", "重复")
            else:
                seen_states.add(step["state"])
            if problem := _text(step.get("name"), required=True, limit=64):
                add(where + ".name", problem)
            if step.get("owner") not in STEP_OWNERS:
                add(where + ".owner", f"应为 {', '.join(STEP_OWNERS)} 之一")
            if problem := _limit_error(step.get("limit")):
                add(where + ".limit", problem)
    result = definition.get("result")
    if not isinstance(result, dict) or _text(result.get("description"), required=True):
        add("result", "应说明结果的样子（description）")
    elif not isinstance(result.get("fields", []), list) or any(
        f not in RESULT_FIELDS for f in result.get("fields", [])
    ):
        add("result.fields", f"只能是 {', '.join(RESULT_FIELDS)}")
    sensitive = definition.get("sensitive_fields", [])
    # Names only: a list or an object in the list cannot be looked up (unhashable).
    if not isinstance(sensitive, list) or any(
        not isinstance(f, str) or f not in DECLARED_SENSITIVE_FIELDS for f in sensitive
    ):
        add("sensitive_fields", f"只能是 {', '.join(DECLARED_SENSITIVE_FIELDS)}")
    elif "result" not in errors and "result.fields" not in errors:
        # A sensitive result (a certificate number) is stored as one of the type's sensitive values: a type
        # that does not collect it could never record it, and its errands never be approved.
        for field in result.get("fields", []):
            if field in SENSITIVE_FIELDS and field not in sensitive:
                add("sensitive_fields", f"结果有{SENSITIVE_LABELS[field]}，须把 {field} 列入敏感信息")
    for flag in ("money", "public_notice"):
        if not isinstance(definition.get(flag, False), bool):
            add(flag, "应为 true 或 false")
    reminder = definition.get("reminder")
    if reminder is not None:
        if not isinstance(reminder, dict) or not isinstance(reminder.get("times"), int):
            add("reminder", "应为 {amount, unit, times}")
        elif problem := _limit_error({k: reminder.get(k) for k in ("amount", "unit")}):
            add("reminder", problem)
        elif not 0 <= reminder["times"] <= 10:
            add("reminder.times", "应在 0 至 10 之间")
    known = {
        "code",
        "name",
        "description",
        "office",
        "materials",
        "steps",
        "result",
        "sensitive_fields",
        "money",
        "public_notice",
        "reminder",
    }
    for field in sorted(set(definition) - known):
        add(field, "未知字段")
    return errors


def step_of(definition: dict, state: str) -> dict | None:
    """The definition's step for a state, or None when that state runs without a clock."""
    return next((s for s in definition.get("steps", []) if s.get("state") == state), None)


def material_names(definition: dict) -> dict[str, str]:
    return {m["code"]: m["name"] for m in definition["materials"]}


def required_materials(definition: dict) -> list[str]:
    return [m["code"] for m in definition["materials"] if m["required"]]
