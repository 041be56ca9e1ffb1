"""marshmallow fields shared by every domain's schemas."""

import marshmallow as ma

from backend import clock
from backend.privacy.kinds import KINDS, id_number_problem

# The years a time or a day people send can fall in: far enough for any real order, errand or visit, and
# away from datetime's limits, where a time (0001-01-01 at +08:00) cannot even be turned into UTC for the
# database and the request would fail as a 500.
MIN_YEAR, MAX_YEAR = 2000, 2100
YEAR_MESSAGE = f"年份须在 {MIN_YEAR} 至 {MAX_YEAR} 之间"


def within_years(value) -> None:
    """Validator of a date or a datetime field: within MIN_YEAR..MAX_YEAR."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ma.ValidationError(YEAR_MESSAGE)


def valid_id_number(value: str) -> None:
    """Validator of an ID number field (居民身份证号码): its shape, birth date and check character."""
    if problem := id_number_problem(value, clock.to_local(clock.now()).date()):
        raise ma.ValidationError(problem)


class LocalDateTime(ma.fields.DateTime):
    """ISO 8601 with the +08:00 offset the mini-program shows."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else clock.to_local(value).isoformat()


class Masked(ma.fields.String):
    """A sensitive value, always masked in responses; the full value only comes from a logged reveal."""

    def __init__(self, kind: str, **kwargs):
        self.kind = KINDS[kind]
        kwargs.setdefault("dump_only", True)
        kwargs.setdefault("allow_none", True)
        kwargs.setdefault("metadata", {}).setdefault("description", f"{self.kind.label}（已脱敏）")
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else self.kind.mask(value)


class PublicId(ma.fields.String):
    """An object's opaque id in responses (the ``public_id`` attribute)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("attribute", "public_id")
        kwargs.setdefault("dump_only", True)
        super().__init__(**kwargs)


class Text(ma.fields.String):
    """Text a person typed (a name, an address, a reason): the spaces around it dropped before it is
    checked, so a blank one ("   ") is refused as empty instead of stored, and none is kept with a stray
    space."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class PeriodQuery(ma.Schema):
    """A query over a period [since, until): a period that ends before it begins asks for nothing, and says so
    rather than answering with zeros."""

    @ma.validates_schema
    def _until_after_since(self, data, **kwargs):
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and until <= since:
            raise ma.ValidationError("须晚于开始时间（since）", field_name="until")
