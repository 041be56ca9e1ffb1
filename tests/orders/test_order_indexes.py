"""Conditions written as SQL text with constants (partial indexes, the open-load triggers); they must say
what the code's states say."""

from backend.orders.models import LOAD_STATES, LOAD_STATES_SQL, NEEDS_ACTION, NEEDS_ACTION_SQL
from backend.orders.states import HELD_STATES


def test_open_load_is_what_an_organization_holds_unfinished_or_was_dispatched():
    assert set(LOAD_STATES) == (HELD_STATES - {"resolved"}) | {"dispatched"}
    assert LOAD_STATES_SQL == "state IN ('in_progress', 'suspended', 'taken', 'dispatched')"


def test_board_condition_is_the_needs_action_states():
    assert NEEDS_ACTION == ("submitted", "accepted", "returned", "dispatched")
    assert NEEDS_ACTION_SQL.startswith("state IN ('submitted', 'accepted', 'returned', 'dispatched') OR ")
