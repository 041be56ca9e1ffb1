"""Custom questions of a service category, and the answers an order gives them: pure validation.

Modelled on Open311's service attributes: each question has a code, a label, a datatype, whether it is
required, and for choices the allowed values. Errors come back per question code, in Chinese, ready to be a
422's field details.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

DATATYPES = ("string", "number", "datetime", "text", "single_choice", "multi_choice")
DATATYPE_LABELS = {
    "string": "短文本",
    "number": "数字",
    "datetime": "日期时间",
    "text": "长文本",
    "single_choice": "单选",
    "multi_choice": "多选",
}
MAX_LENGTH = {"string": 100, "text": 2000}
MAX_QUESTIONS = 20
# No answer (and no range's end) is a number larger than this, either way.
LARGEST = 1_000_000_000


def definition_errors(questions: list[dict]) -> dict[str, list[str]]:
    """Return what is wrong with a category's question list, per question code (empty when fine)."""
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    if len(questions) > MAX_QUESTIONS:
        errors["questions"] = [f"最多 {MAX_QUESTIONS} 个问题"]
    for question in questions:
        code = question["code"]
        if code in seen:
            errors.setdefault(code, []).append("问题代码重复")
        seen.add(code)
        choices = question.get("choices") or []
        is_choice = question["datatype"] in ("single_choice", "multi_choice")
        if is_choice and len(choices) < 2:
            errors.setdefault(code, []).append("选择题至少需要两个选项")
        if not is_choice and choices:
            errors.setdefault(code, []).append("只有选择题可以设置选项")
        keys = [c["key"] for c in choices]
        if len(keys) != len(set(keys)):
            errors.setdefault(code, []).append("选项代码重复")
        low, high = question.get("min"), question.get("max")
        if (low is not None or high is not None) and question["datatype"] != "number":
            errors.setdefault(code, []).append("只有数字题可以设置范围")
        elif low is not None and high is not None and low > high:
            errors.setdefault(code, []).append("最小值不能大于最大值")
    return errors


def _shown(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)


def _answer_error(question: dict, value) -> tuple[object, str | None]:
    """Return the normalized answer and an error message (or None)."""
    datatype = question["datatype"]
    keys = [c["key"] for c in question.get("choices") or []]
    if datatype in ("string", "text"):
        if not isinstance(value, str):
            return None, "应为文本"
        value = value.strip()
        if len(value) > MAX_LENGTH[datatype]:
            return None, f"不能超过 {MAX_LENGTH[datatype]} 个字"
        return value, None
    if datatype == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None, "应为数字"
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None, "应为数字"
        # copy_abs: abs() rounds to the context, and "1E+1000000" would overflow it (a 500).
        if not number.is_finite() or number.copy_abs() > LARGEST:
            return None, "应为合理范围内的数字"
        low, high = question.get("min"), question.get("max")
        if low is not None and number < Decimal(str(low)):
            return None, f"不能小于 {_shown(low)}"
        if high is not None and number > Decimal(str(high)):
            return None, f"不能大于 {_shown(high)}"
        return float(number) if number != number.to_integral_value() else int(number), None
    if datatype == "datetime":
        if not isinstance(value, str):
            return None, "应为日期时间，如 2026-11-25T09:30:00+08:00"
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None, "应为日期时间，如 2026-11-25T09:30:00+08:00"
        if moment.tzinfo is None:
            return None, "日期时间须带时区，如 +08:00"
        return moment.isoformat(), None
    if datatype == "single_choice":
        if value not in keys:
            return None, "不是可选的选项"
        return value, None
    if not isinstance(value, list) or not value:
        return None, "应选择至少一项"
    if any(v not in keys for v in value):
        return None, "包含不可选的选项"
    # Kept in the order the choices are listed, each once.
    return [key for key in keys if key in value], None


def check_answers(questions: list[dict], answers: dict) -> tuple[dict, dict[str, list[str]]]:
    """Return the normalized answers and the errors per question code; unknown codes are errors too."""
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    known = {q["code"] for q in questions}
    for code in answers:
        if code not in known:
            errors[code] = ["该分类没有这个问题"]
    for question in questions:
        code = question["code"]
        value = answers.get(code)
        # Blanks alone answer nothing, required or not (a string answer is kept stripped).
        if value is None or (isinstance(value, str) and not value.strip()) or value == []:
            if question.get("required"):
                errors[code] = [f"请回答：{question['label']}"]
            continue
        normalized, error = _answer_error(question, value)
        if error:
            errors[code] = [error]
        else:
            clean[code] = normalized
    return clean, errors
