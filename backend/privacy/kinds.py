"""The kinds of sensitive value the product stores, each with its normalisation, mask and consent."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from backend.privacy.masking import mask_id_number, mask_phone, mask_text


@dataclass(frozen=True)
class SensitiveKind:
    name: str
    label: str
    mask: Callable[[str], str]
    normalize: Callable[[str], str] = str.strip
    # The consent (单独同意) that must be on record before a value of this kind is stored for a person.
    consent: str = ""


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _phone(value: str) -> str:
    """A mainland number as its 11 digits (also when written +86 …); any other as + and its digits, country
    code first, so it is never taken for a mainland one."""
    digits = _digits(value)
    if not value.strip().startswith("+"):
        return digits
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else "+" + digits


def _id_number(value: str) -> str:
    return value.strip().upper()


# GB 11643: the 18th character checks the first 17 (ISO 7064 MOD 11-2).
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECKS = "10X98765432"


def id_number_problem(value: str, today: date) -> str | None:
    """What is wrong with a resident identity card number (居民身份证号码), or None. A typo is caught here
    rather than at the office it is taken to: the shape, a birth date that exists, and the check character."""
    number = _id_number(value)
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return "身份证号应为18位，最后一位可以是X"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        born = None
    if born is None or born.year < 1900 or born > today:
        return "身份证号中的出生日期不存在，请核对"
    if _ID_CHECKS[sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True)) % 11] != number[17]:
        return "身份证号校验位不符，请核对"
    return None


KINDS: dict[str, SensitiveKind] = {
    k.name: k
    for k in (
        SensitiveKind("phone", "手机号", mask_phone, _phone, consent="phone"),
        SensitiveKind("id_number", "身份证号", mask_id_number, _id_number, consent="id_number"),
        SensitiveKind("health", "健康状况", mask_text, consent="health"),
        SensitiveKind("disability", "残疾情况", mask_text, consent="disability"),
        SensitiveKind("subsistence", "低保状态", mask_text, consent="subsistence"),
        SensitiveKind("insurance_card", "医保卡号", mask_id_number, _id_number, consent="insurance_card"),
    )
}

CONSENT_LABELS = {
    "phone": "手机号用于联系与通知",
    "id_number": "身份证号用于实名核验与代办",
    "health": "健康信息用于提供相应服务",
    "disability": "残疾信息用于残疾证代办与帮扶",
    "subsistence": "低保信息用于低保申请代办",
    "insurance_card": "医保卡信息用于代购药品",
    "entrustment": "授权委托代办员代为办理事项",
}
