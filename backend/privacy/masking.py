"""How sensitive values look in responses: enough to recognise, never enough to use."""


def mask_phone(value: str) -> str:
    """138****8000"""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_id_number(value: str) -> str:
    """110105********0123"""
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_text(value: str) -> str:
    """Free text such as a diagnosis: its first character, then stars."""
    if not value:
        return value
    return value[0] + "*" * min(len(value) - 1, 8)


def mask_name(value: str) -> str:
    """张*明 — Chinese names keep family name and, for three characters or more, the last."""
    if len(value) <= 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]
