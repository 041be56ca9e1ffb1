"""The events' words: a step carried by another step's template reads as itself; the rest as the event."""

import pytest

from backend.notify import events

STEPS = [(event, state) for event in events.EVENTS.values() for state in event.steps]


@pytest.mark.parametrize(("event", "state"), STEPS, ids=lambda v: getattr(v, "name", v))
def test_each_step_has_its_own_title_and_sentence(event, state):
    fields = {"subject": "水电维修", "state": state, "note": "原因"}
    title, sentence = event.steps[state]
    assert event.title_for(fields) == title != event.title
    body = event.body(fields)
    assert body.splitlines()[0] == sentence.format(subject="水电维修", state=state)
    assert "备注：原因" in body


def test_any_other_state_reads_as_the_event():
    accepted = events.get_event("order_accepted")
    assert accepted.title_for({"subject": "水电维修"}) == "工单已受理"
    assert accepted.body({"subject": "水电维修"}) == "您的「水电维修」已由社区受理。"
