"""Errand types' names for the domains that show them (appointments label bookings and service points),
kept in the process until a type is added or renamed."""

from sqlalchemy import select

from backend import localcache
from backend.db import autocommit
from backend.errands.models import ErrandType

_names = localcache.LocalCache("errand_type_names", max_entries=1, max_age=3600.0)
localcache.watch(ErrandType, _names)


def _load_names() -> dict[str, str]:
    with autocommit() as connection:
        return dict(connection.execute(select(ErrandType.code, ErrandType.name)).all())


def type_names() -> dict[str, str]:
    """Every errand type's name by its code (read once for a list of codes: where no cache is kept, each
    call is a query)."""
    return _names.get("all", _load_names)


def type_name(code: str) -> str:
    """The name people know an errand type by (低保申请), or its code if no such type exists."""
    return type_names().get(code, code)
