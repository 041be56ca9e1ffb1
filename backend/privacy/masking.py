"""How sensitive values look in responses: enough to recognise, never enough to use."""


def _keep_ends(value: str, head: int, tail: int) -> str:
    """The value with its first ``head`` and last ``tail`` characters shown and the rest starred, the ends
    shortened (the longer first) until at least a third of it, and at least four characters, is hidden: a
    short number under the usual pattern (six and four of an ID number) would otherwise show whole."""
    if len(value) < 6:
        return "*" * len(value)
    hidden = max(4, -(-len(value) // 3))
    while len(value) - head - tail < hidden:
        if head >= tail:
            head -= 1
        else:
            tail -= 1
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_phone(value: str) -> str:
    """138****8000"""
    return _keep_ends(value, 3, 4)


def mask_id_number(value: str) -> str:
    """110105********0123 (also for other card and certificate numbers)"""
    return _keep_ends(value, 6, 4)


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
