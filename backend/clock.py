"""The one source of "now", so tests can freeze it and every timestamp is timezone-aware."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """Return the current instant in UTC."""
    return datetime.now(UTC)


def to_local(value: datetime) -> datetime:
    """Return an aware datetime in Asia/Shanghai (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TZ)
