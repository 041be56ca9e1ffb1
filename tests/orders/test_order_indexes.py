"""The partial indexes' conditions are SQL text with constants; they must say what the code's states say."""

from backend.orders import recommend
from backend.orders.models import LOAD_STATES, LOAD_STATES_SQL, NEEDS_ACTION, NEEDS_ACTION_SQL


def test_open_load_condition_is_the_recommendation_states():
    assert list(LOAD_STATES) == recommend.LOAD_STATES
    assert LOAD_STATES_SQL == "state IN ('in_progress', 'suspended', 'taken', 'dispatched')"


def test_board_condition_is_the_needs_action_states():
    assert NEEDS_ACTION == ("submitted", "accepted", "returned", "dispatched")
    assert NEEDS_ACTION_SQL.startswith("state IN ('submitted', 'accepted', 'returned', 'dispatched') OR ")
