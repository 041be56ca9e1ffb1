"""The service catalog: everyone reads it with its questions and time limits; street admins manage it."""

import pytest

from backend.catalog import questions
from backend.catalog.service import load_catalog, shipped_catalog


@pytest.fixture
def catalog():
    return load_catalog(shipped_catalog())


def test_the_shipped_catalog_covers_the_four_kinds(client, catalog):
    response = client.get("/api/v1/catalog/categories")
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert {i["service_kind"] for i in items} == {"urgent", "daily", "targeted", "professional"}
    legal = next(i for i in items if i["code"] == "legal_advice")
    assert legal["service_kind_label"] == "专业性" and legal["policy"]["complete"]["label"] == "15个工作日"
    assert [q["datatype_label"] for q in legal["questions"]] == ["单选", "长文本"]
    urgent = client.get("/api/v1/catalog/categories?service_kind=urgent").get_json()["items"]
    assert {i["code"] for i in urgent} == {"emergency_help", "urgent_repair"}
    assert load_catalog(shipped_catalog()) == 0  # loading again adds nothing


def test_street_admins_add_edit_and_disable_categories(client, auth, catalog):
    body = {
        "code": "pet_care",
        "name": "宠物照看",
        "service_kind": "daily",
        "questions": [{"code": "pet", "label": "宠物种类", "datatype": "string", "required": True}],
    }
    assert (
        client.post("/api/v1/catalog/categories", json=body, headers=auth("secretary_a")).status_code == 403
    )
    created = client.post("/api/v1/catalog/categories", json=body, headers=auth("street_admin"))
    assert created.status_code == 201, created.get_json()
    again = client.post("/api/v1/catalog/categories", json=body, headers=auth("street_admin"))
    assert again.status_code == 409
    off = client.patch(
        "/api/v1/catalog/categories/pet_care", json={"enabled": False}, headers=auth("street_admin")
    )
    assert off.status_code == 200 and off.get_json()["enabled"] is False
    codes = [i["code"] for i in client.get("/api/v1/catalog/categories").get_json()["items"]]
    assert "pet_care" not in codes


@pytest.mark.parametrize(
    ("question", "field"),
    [
        (
            {
                "code": "x",
                "label": "选择",
                "datatype": "single_choice",
                "choices": [{"key": "a", "label": "甲"}],
            },
            "x",
        ),
        (
            {
                "code": "x",
                "label": "文本",
                "datatype": "string",
                "choices": [{"key": "a", "label": "甲"}, {"key": "b", "label": "乙"}],
            },
            "x",
        ),
        ({"code": "Bad Code", "label": "文本", "datatype": "string"}, None),
        ({"code": "pet\n", "label": "文本", "datatype": "string"}, None),
        (
            {
                "code": "x",
                "label": "选择",
                "datatype": "single_choice",
                "choices": [{"key": "a\n", "label": "甲"}, {"key": "b", "label": "乙"}],
            },
            None,
        ),
        ({"code": "x", "label": "文本", "datatype": "colour"}, None),
        ({"code": "x", "label": "文本", "datatype": "string", "min": 1}, "x"),
        ({"code": "x", "label": "面积", "datatype": "number", "min": 10, "max": 1}, "x"),
        ({"code": "x", "label": "面积", "datatype": "number", "max": 1e12}, None),
    ],
)
def test_bad_questions_are_refused(client, auth, question, field):
    body = {"code": "c1", "name": "分类", "service_kind": "daily", "questions": [question]}
    response = client.post("/api/v1/catalog/categories", json=body, headers=auth("street_admin"))
    assert response.status_code == 422, response.get_json()
    if field:
        assert field in response.get_json()["details"]["questions"]


def test_answers_are_checked_and_normalized():
    qs = [
        {"code": "n", "label": "人数", "datatype": "number", "required": True},
        {"code": "t", "label": "时间", "datatype": "datetime"},
        {
            "code": "m",
            "label": "内容",
            "datatype": "multi_choice",
            "choices": [{"key": "a", "label": "甲"}, {"key": "b", "label": "乙"}],
        },
    ]
    clean, errors = questions.check_answers(
        qs, {"n": "3", "m": ["b", "a", "b"], "t": "2026-12-01T09:00:00+08:00"}
    )
    assert errors == {} and clean == {"n": 3, "m": ["a", "b"], "t": "2026-12-01T09:00:00+08:00"}
    _, errors = questions.check_answers(qs, {"n": "many", "t": "tomorrow", "m": ["c"], "z": 1})
    assert set(errors) == {"n", "t", "m", "z"}
    _, errors = questions.check_answers(qs, {"t": "2026-12-01T09:00:00"})
    assert errors == {"n": ["请回答：人数"], "t": ["日期时间须带时区，如 +08:00"]}


@pytest.mark.parametrize("answer", ["1E+1000000", "-1e1000000", "1e999999999999999999", 1e400])
def test_a_number_out_of_all_range_is_refused_by_field(answer):
    qs = [{"code": "area", "label": "面积", "datatype": "number", "required": True}]
    _, errors = questions.check_answers(qs, {"area": answer})
    assert errors == {"area": ["应为合理范围内的数字"]}


def test_a_number_answer_keeps_within_its_questions_range(client, auth):
    area = {"code": "area", "label": "面积（平方米）", "datatype": "number", "min": 1, "max": 10000}
    assert questions.check_answers([area], {"area": -5})[1] == {"area": ["不能小于 1"]}
    assert questions.check_answers([area], {"area": "10000.5"})[1] == {"area": ["不能大于 10000"]}
    assert questions.check_answers([area], {"area": "1"}) == ({"area": 1}, {})
    # Kept and shown by the catalog, so the mini-program can say so before it asks.
    body = {"code": "cleaning2", "name": "居家清洁", "service_kind": "daily", "questions": [area]}
    made = client.post("/api/v1/catalog/categories", json=body, headers=auth("street_admin"))
    assert made.status_code == 201, made.get_json()
    assert (made.get_json()["questions"][0]["min"], made.get_json()["questions"][0]["max"]) == (1, 10000)


def test_the_shipped_catalogs_numbers_have_their_ranges(catalog):
    numbers = [q for c in shipped_catalog() for q in c["questions"] if q["datatype"] == "number"]
    assert numbers and all(q.get("min") is not None and q.get("max") is not None for q in numbers)


def test_a_blank_answer_does_not_answer_a_required_question():
    qs = [
        {"code": "need", "label": "需要的帮助", "datatype": "string", "required": True},
        {"code": "note", "label": "补充说明", "datatype": "text"},
    ]
    clean, errors = questions.check_answers(qs, {"need": "  \n ", "note": "   "})
    assert errors == {"need": ["请回答：需要的帮助"]}
    clean, errors = questions.check_answers(qs, {"need": " 轮椅推行 ", "note": "   "})
    assert errors == {} and clean == {"need": "轮椅推行"}  # a blank optional answer is no answer


def test_a_category_code_ending_in_a_newline_is_refused(client, auth):
    body = {"code": "pet_care\n", "name": "宠物照看", "service_kind": "daily"}
    response = client.post("/api/v1/catalog/categories", json=body, headers=auth("street_admin"))
    assert response.status_code == 422 and "code" in response.get_json()["details"]


def test_a_disabled_category_stays_listed_for_whoever_turns_it_back_on(client, auth, catalog):
    """The street admin who stopped offering 家政保洁 finds it again in the catalog (include_disabled) to
    offer it again; it was in no list at all, so turning it back on took remembering its code."""
    headers = auth("street_admin")
    off = client.patch("/api/v1/catalog/categories/cleaning", json={"enabled": False}, headers=headers)
    assert off.status_code == 200
    offered = client.get("/api/v1/catalog/categories").get_json()["items"]
    assert "cleaning" not in [i["code"] for i in offered]
    everything = client.get("/api/v1/catalog/categories?include_disabled=true", headers=headers)
    assert everything.status_code == 200
    items = {i["code"]: i for i in everything.get_json()["items"]}
    assert items["cleaning"]["enabled"] is False
    assert len(items) == len(offered) + 1
    daily = client.get("/api/v1/catalog/categories?include_disabled=true&service_kind=daily").get_json()
    assert "cleaning" in [i["code"] for i in daily["items"]]
    bad = client.get("/api/v1/catalog/categories?include_disabled=maybe")
    assert bad.status_code == 422 and "include_disabled" in bad.get_json()["details"]
