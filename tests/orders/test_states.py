"""The order state table, pure: consistent with itself and with the URLs of the API."""

from backend.orders import states


def test_every_transition_names_known_states_and_labelled_actions():
    for (state, action), transition in states.TABLE.items():
        assert state in states.STATES and transition.to in states.STATES
        assert action in states.ACTION_LABELS and transition.actors


def test_final_states_only_allow_reopen_and_rating():
    for state, action in states.TABLE:
        if state in states.FINAL_STATES:
            assert (state, action) in {("closed", "reopen"), ("closed", "rate")}


def test_allowed_actions_depend_on_who_asks():
    assert states.allowed_actions("submitted", {states.OWNER}) == ["cancel"]
    assert states.allowed_actions("submitted", {states.SECRETARY}) == ["accept", "reject", "dispatch"]
    assert states.allowed_actions("dispatched", {states.ORG_ADMIN}) == ["take", "return"]
    assert states.allowed_actions("taken", {states.OWNER}) == []
    assert not states.can("taken", "cancel", {states.OWNER})
    assert states.can("taken", "cancel", {states.SECRETARY})


def test_every_action_a_person_takes_has_its_own_url(app):
    routes = {r.rule for r in app.url_map.iter_rules() if "POST" in r.methods}
    people_actions = {a for (_, a), t in states.TABLE.items() if t.actors - {states.SYSTEM}}
    for action in people_actions:
        url = "/api/v1/orders/<string:order_id>/" + action.replace("_", "-")
        assert url in routes, action
