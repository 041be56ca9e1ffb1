"""What the SLA engine needs to know of the things it times (orders, errand steps): how to name one to a
person, and what the owning domain does when a card is raised. Domains register at import; the engine never
imports them."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Description:
    """How a tracked item reads in a notification: "水管漏水维修", its number, the mini-program page."""

    title: str
    number: str
    page: str | None = None
    # The item's public id, for the API to link to it (a 督办 record names what it is about).
    public_id: str | None = None


@dataclass(frozen=True)
class SubjectType:
    name: str
    label: str
    describe: Callable[[int], Description]
    # Many at once, in a bounded number of statements (a page of 督办 records): a description of each id
    # asked, found or not; without it each is described on its own.
    describe_many: Callable[[list[int]], dict[int, Description]] | None = None
    # Called inside the card's transaction with the clock, after the engine's own effects.
    on_warning: Callable[[object], None] | None = None
    on_overdue: Callable[[object], None] | None = None
    # Called inside the caller's transaction when one of its clocks stops for good.
    on_stopped: Callable[[object], None] | None = None
    # Called inside the closing transaction with the item's id when one of its 督办 records is closed.
    on_supervision_closed: Callable[[int], None] | None = None
    # The notification event people answerable for it get when it is overdue.
    overdue_event: str = "supervision_raised"


_TYPES: dict[str, SubjectType] = {}


def register(subject_type: SubjectType) -> SubjectType:
    """Make a kind of tracked item known to the engine (idempotent for the same definition)."""
    existing = _TYPES.get(subject_type.name)
    if existing is not None and existing != subject_type:
        raise ValueError(f"subject type {subject_type.name!r} is already registered differently")
    _TYPES[subject_type.name] = subject_type
    return subject_type


def get(name: str) -> SubjectType:
    """Return the registered type, or a plain one naming the item by its type and number."""
    found = _TYPES.get(name)
    if found is not None:
        return found
    return SubjectType(name=name, label=name, describe=lambda subject_id: missing(name, subject_id))


def missing(label: str, subject_id: int) -> Description:
    """How an item reads when it cannot be found: its kind and its id."""
    return Description(label, str(subject_id))


def describe_all(pairs) -> dict[tuple[str, int], Description]:
    """Describe many items, given as (subject type, id) pairs: one batch per type that can."""
    by_type: dict[str, set[int]] = {}
    for subject_type, subject_id in pairs:
        by_type.setdefault(subject_type, set()).add(subject_id)
    described: dict[tuple[str, int], Description] = {}
    for subject_type, ids in by_type.items():
        kind = get(subject_type)
        if kind.describe_many is not None:
            for subject_id, description in kind.describe_many(sorted(ids)).items():
                described[subject_type, subject_id] = description
        else:
            for subject_id in ids:
                described[subject_type, subject_id] = kind.describe(subject_id)
    return described
