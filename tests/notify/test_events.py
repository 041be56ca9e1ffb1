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


def test_every_step_word_reaches_wechat_whole_or_as_a_phrase_written_for_it():
    """A step's state word fills the templates' phrase keyword (5 Chinese characters at most): one that does
    not fit has its own phrase, so that none is cut into something else (终止并退还现金 → 终止并退还)."""
    for event in events.EVENTS.values():
        for state in (event.default_state, *event.steps):
            phrase = event.phrase_for(state)
            assert events.fit_value("phrase3", phrase) == phrase, (event.name, state, phrase)
    assert events.get_event("errand_step_changed").phrase_for("终止并退还现金") == "终止退现金"
    assert events.get_event("errand_step_changed").phrase_for("已改派") == "已改派"


def test_any_other_state_reads_as_the_event():
    accepted = events.get_event("order_accepted")
    assert accepted.title_for({"subject": "水电维修"}) == "工单已受理"
    assert accepted.body({"subject": "水电维修"}) == "您的「水电维修」已由社区受理。"


@pytest.mark.parametrize(
    ("key", "value", "sent"),
    [
        ("phrase3", "终止并退还现金", "终止并退还"),
        ("phrase3", "部门审核中", "部门审核中"),
        ("phrase3", "已受理（待补充）", "已受理待补"),
        ("phrase3", "OK", "无"),
        ("thing1", "一二三四五六七八九十一二三四五六七八九十一", "一二三四五六七八九十一二三四五六七八九…"),
        ("character_string2", "SD2026 工单-001", "SD2026-001"),
    ],
)
def test_values_are_cut_to_what_wechat_takes(key, value, sent):
    assert events.fit_value(key, value) == sent


UNFILLABLE = ["number1", "letter2", "symbol3", "amount4", "name5", "phone_number6", "car_number7"]


@pytest.mark.parametrize("key", UNFILLABLE)
def test_keywords_no_field_can_fill_are_refused_in_a_mapping(key):
    """Subject, number, state, time, note and place are text WeChat refuses in a keyword of these kinds (an
    order number in number1, a category name in name5): every message would fail with 47003."""
    assert key in events.mapping_errors({key: "number", "thing1": "subject"})
    assert "thing1" not in events.mapping_errors({key: "number", "thing1": "subject"})
