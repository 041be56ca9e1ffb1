"""The fast paths vouch only for what their schema's load accepts, and return exactly what load returns:
the placement's for plain bodies (no times, coordinates as JSON numbers) decides exactly as load does, the
lists' takes every query that is only a page."""

import marshmallow as ma
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from backend.orders.schemas import BoardQuerySchema, OrderCreateSchema, OrderListQuerySchema
from tests.orders.conftest import ORDER

SCHEMA = OrderCreateSchema()
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


def exactly(*lengths: int):
    """Text of exactly these lengths (the limits and either side of them)."""
    return st.sampled_from(lengths).flatmap(lambda n: st.text(min_size=n, max_size=n))


def sized(*lengths: int):
    """Such text, or anything else."""
    return st.one_of(exactly(*lengths), anything)


numbers = st.one_of(
    st.sampled_from([0, 90, -90, 180, -180, 91, -91, 181, 90.0, 89.999, 180.0001, 1e309, float("nan")]),
    st.integers(-300, 300),
    st.floats(-300, 300),
    anything,
)
FIELDS = {
    "category": sized(0, 1, 64, 65),
    "description": sized(0, 1, 2, 1000, 1001),
    # JSON keys are text.
    "answers": st.one_of(st.dictionaries(exactly(0, 64, 65), anything, max_size=2), anything),
    "address": sized(1, 2, 200, 201),
    "grid_id": st.one_of(sized(0, 1, 24, 25), st.none()),
    "resident_id": st.one_of(sized(0, 1, 24, 25), st.none()),
    "latitude": numbers,
    "longitude": numbers,
    "preferred_start": st.one_of(st.none(), st.just("2026-12-01T09:00:00+08:00"), anything),
    "preferred_end": st.one_of(st.none(), st.just("2026-12-01T11:00:00"), anything),
    # Spaces around what a person typed go (load drops them): blank, within the limits, or not.
    "contact_name": st.one_of(
        sized(0, 1, 64, 65), st.sampled_from([" 王秀英", "王秀英\u3000", "  ", " " * 66])
    ),
    "contact_phone": st.one_of(
        st.sampled_from(["13812348000", "13812348000\n", "12812348000", "1381234800", "138123480001"]),
        anything,
    ),
    "photo_ids": st.one_of(st.lists(sized(0, 1, 24, 25), max_size=2), anything),
    "surplus": anything,
}
# A valid order with a few of its fields changed, dropped, or added.
bodies = st.builds(
    lambda changes, dropped: {k: v for k, v in {**ORDER, **changes}.items() if k not in dropped},
    st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: FIELDS[name] for name in names})
    ),
    st.sets(st.sampled_from(sorted(ORDER)), max_size=1),
)


def _load(body):
    try:
        return SCHEMA.load(body)
    except ma.ValidationError:
        return None


def _plain(body) -> bool:
    """Nothing in it that only load reads: times, numbers as text, spaces around typed text."""
    return (
        all(
            not isinstance(text := body.get(k), str) or text == text.strip()
            for k in ("description", "address", "contact_name")
        )
        and body.get("preferred_start") is None
        and body.get("preferred_end") is None
        and all(type(body.get(k)) in (type(None), int, float) for k in ("latitude", "longitude"))
    )


# Derandomized: the same examples on every run; the bodies lean on each limit and either side of it.
@settings(max_examples=3000, deadline=None, derandomize=True)
@given(bodies)
def test_the_fast_path_says_what_load_says(body):
    fast = SCHEMA.fast_load(body)
    loaded = _load(body)
    if fast is not None:
        assert loaded == fast
    elif _plain(body):
        assert loaded is None


def test_a_usual_body_takes_the_fast_path():
    assert SCHEMA.fast_load(ORDER) == SCHEMA.load(ORDER)
    assert SCHEMA.fast_load({**ORDER, "latitude": 31.2, "longitude": 121, "photo_ids": ["up_1"]}) is not None


queries = st.lists(
    st.tuples(
        st.sampled_from(["cursor", "limit", "state", "needs_action", "community_id", "page"]),
        st.one_of(
            st.text(max_size=8), exactly(0, 119, 120, 121), st.sampled_from(["20", "0", "true", "submitted"])
        ),
    ),
    max_size=3,
)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(queries, st.sampled_from([OrderListQuerySchema(), BoardQuerySchema()]))
def test_a_list_query_that_is_only_a_page_takes_the_fast_path(pairs, schema):
    args = MultiDict(pairs)
    fast = schema.fast_load(args)
    try:
        loaded = schema.load(dict(args.items()))
    except ma.ValidationError:
        loaded = None
    if fast is not None:
        assert loaded == fast
    if not pairs or (len(pairs) == 1 and pairs[0][0] == "cursor" and len(pairs[0][1]) <= 120):
        assert fast is not None
