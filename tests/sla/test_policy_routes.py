"""SLA policies through the API: everyone reads them, street admins change them per kind or category."""

import pytest
import sqlalchemy as sa

from backend import clock
from backend.db import db
from backend.sla import policies
from backend.sla.models import SlaPolicyOverride
from tests.worker_process import run_queued_behind


def test_defaults_are_listed_for_every_kind(client, auth):
    response = client.get("/api/v1/sla/policies", headers=auth("resident_a1"))
    assert response.status_code == 200
    items = {i["service_kind"]: i for i in response.get_json()["items"]}
    assert list(items) == ["urgent", "daily", "targeted", "professional"]
    urgent = items["urgent"]
    assert urgent["source"] == "default" and urgent["service_kind_label"] == "紧急性"
    assert urgent["policy"]["accept"] == {"amount": 0.5, "unit": "hours", "label": "30分钟"}
    assert urgent["policy"]["extension"] is None and urgent["policy"]["return"] is None
    assert items["daily"]["policy"]["complete"]["label"] == "5个工作日"


@pytest.fixture
def shipped_catalog():
    from backend.catalog.service import load_catalog
    from backend.catalog.service import shipped_catalog as entries

    load_catalog(entries())


def test_a_street_admin_overrides_a_category_and_resets_it(client, auth, shipped_catalog):
    body = {
        "accept": {"amount": 4, "unit": "working_hours"},
        "complete": {"amount": 2, "unit": "working_days"},
        "extension": None,
        "return": {"amount": 1, "unit": "working_days"},
    }
    response = client.put(
        "/api/v1/sla/policies/daily/categories/home_repair", json=body, headers=auth("street_admin")
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["complete"]["label"] == "2个工作日"
    policy = policies.policy_for(service_kind="daily", category_code="home_repair")
    assert policy.complete.amount == 2 and policy.extension is None
    # Other categories of the kind keep the kind's policy.
    assert policies.policy_for(service_kind="daily", category_code="companionship").complete.amount == 5
    listed = client.get("/api/v1/sla/policies", headers=auth("street_admin")).get_json()["items"]
    assert [(i["category_code"], i["source"]) for i in listed if i["category_code"]] == [
        ("home_repair", "override")
    ]

    response = client.delete(
        "/api/v1/sla/policies/daily/categories/home_repair", headers=auth("street_admin")
    )
    assert response.status_code == 204
    assert policies.policy_for(service_kind="daily", category_code="home_repair").complete.amount == 5
    again = client.delete("/api/v1/sla/policies/daily/categories/home_repair", headers=auth("street_admin"))
    assert again.status_code == 404


LIMITS = {"accept": {"amount": 4, "unit": "working_hours"}, "complete": {"amount": 2, "unit": "working_days"}}


def test_a_category_the_catalog_lacks_is_refused_on_its_field(client, auth, shipped_catalog):
    """A rule for a code no category has would never apply: refused, and nothing is stored."""
    response = client.put(
        "/api/v1/sla/policies/daily/categories/repair", json=LIMITS, headers=auth("street_admin")
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"] == {"category_code": ["服务目录中没有该分类"]}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SlaPolicyOverride)) == 0


def test_a_category_may_have_a_rule_under_another_kind(client, auth, shipped_catalog):
    """A secretary may accept an order under another kind than its category's (水电维修 as urgent): the
    category's rule under that kind applies then."""
    response = client.put(
        "/api/v1/sla/policies/urgent/categories/home_repair", json=LIMITS, headers=auth("street_admin")
    )
    assert response.status_code == 200, response.get_json()
    assert policies.policy_for(service_kind="urgent", category_code="home_repair").complete.amount == 2


def test_a_category_turned_off_may_keep_a_rule(client, auth, shipped_catalog):
    from backend.catalog.models import ServiceCategory

    category = db.session.scalar(sa.select(ServiceCategory).where(ServiceCategory.code == "cleaning"))
    category.enabled = False
    db.session.commit()
    response = client.put(
        "/api/v1/sla/policies/daily/categories/cleaning", json=LIMITS, headers=auth("street_admin")
    )
    assert response.status_code == 200, response.get_json()


def test_a_kind_override_applies_to_its_categories(client, auth):
    body = {"accept": {"amount": 1, "unit": "hours"}, "complete": {"amount": 12, "unit": "hours"}}
    assert (
        client.put("/api/v1/sla/policies/urgent", json=body, headers=auth("street_admin")).status_code == 200
    )
    policy = policies.policy_for(service_kind="urgent", category_code="emergency_help")
    assert policy.accept.amount == 1 and policy.return_within is None


def test_only_street_admins_change_policies(client, auth):
    body = {"accept": {"amount": 1, "unit": "hours"}, "complete": {"amount": 12, "unit": "hours"}}
    for person in ("secretary_a", "org_admin", "resident_a1"):
        response = client.put("/api/v1/sla/policies/urgent", json=body, headers=auth(person))
        assert response.status_code == 403, person


def test_bad_policies_are_refused_by_field(client, auth):
    headers = auth("street_admin")
    cases = [
        ({"accept": {"amount": 0, "unit": "hours"}, "complete": {"amount": 1, "unit": "hours"}}, "accept"),
        ({"accept": {"amount": 1, "unit": "weeks"}, "complete": {"amount": 1, "unit": "hours"}}, "accept"),
        (
            {"accept": {"amount": 1.5, "unit": "working_days"}, "complete": {"amount": 3, "unit": "hours"}},
            "accept",
        ),
        ({"accept": {"amount": 1, "unit": "hours"}}, "complete"),
        (
            {"accept": {"amount": 1, "unit": "hours"}, "complete": {"amount": 99999, "unit": "hours"}},
            "complete",
        ),
        # 36 seconds of working time: shorter than a minute, as 0.01 hours is (below).
        (
            {"accept": {"amount": 1, "unit": "hours"}, "complete": {"amount": 0.01, "unit": "working_hours"}},
            "complete",
        ),
    ]
    for body, field in cases:
        response = client.put("/api/v1/sla/policies/daily", json=body, headers=headers)
        assert response.status_code == 422, body
        assert field in response.get_json()["details"], response.get_json()
    body = {"accept": {"amount": 1, "unit": "hours"}, "complete": {"amount": 1, "unit": "hours"}}
    assert client.put("/api/v1/sla/policies/weekly", json=body, headers=headers).status_code == 404
    response = client.put("/api/v1/sla/policies/daily/categories/Bad-Code", json=body, headers=headers)
    assert response.status_code == 422 and "category_code" in response.get_json()["details"]


def test_a_limit_of_a_minute_or_more_is_taken_and_labelled_in_rounded_minutes(client, auth):
    body = {"accept": {"amount": 0.02, "unit": "hours"}, "complete": {"amount": 0.33, "unit": "hours"}}
    response = client.put("/api/v1/sla/policies/urgent", json=body, headers=auth("street_admin"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accept"]["label"] == "1分钟"
    assert response.get_json()["complete"]["label"] == "20分钟"


def test_a_limit_shorter_than_a_minute_is_refused_on_its_field(client, auth):
    # 0.01 hours, 36 seconds: no limit anyone could keep, and labelled "0分钟" when it was taken.
    body = {"accept": {"amount": 0.01, "unit": "hours"}, "complete": {"amount": 24, "unit": "hours"}}
    response = client.put("/api/v1/sla/policies/urgent", json=body, headers=auth("street_admin"))
    assert response.status_code == 422
    assert response.get_json()["details"] == {"accept": {"amount": ["时限不能短于 1 分钟"]}}


def test_an_extension_counted_in_another_unit_than_completion_is_refused(client, auth):
    # A clock adds its extension to its own limit, in its own unit: 24 hours onto 5 working days would
    # have made 29 working days.
    body = {
        "accept": {"amount": 1, "unit": "working_days"},
        "complete": {"amount": 5, "unit": "working_days"},
        "extension": {"amount": 24, "unit": "hours"},
    }
    response = client.put("/api/v1/sla/policies/daily", json=body, headers=auth("street_admin"))
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["details"]) == ["extension"]
    assert policies.policy_for(service_kind="daily").extension.unit == "working_days"


def test_a_policy_saved_twice_at_once_is_set_not_refused(app, world):
    # A double-clicked "save" on PostgreSQL: both requests find no override yet and both insert one.
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer in at a time; the race is PostgreSQL's")
    limits = {
        "accept": {"amount": 2, "unit": "working_days"},
        "complete": {"amount": 4, "unit": "working_days"},
    }
    admin_id = world.users["street_admin"].id
    engine = sa.create_engine(db.engine.url)
    other = engine.connect()
    try:
        first = other.begin()
        other.execute(
            sa.insert(SlaPolicyOverride).values(
                service_kind="daily",
                category_code="",
                accept_amount=1,
                accept_unit="working_days",
                complete_amount=3,
                complete_unit="working_days",
                updated_at=clock.now(),
            )
        )
        failure = run_queued_behind(
            app,
            first,
            lambda: policies.set_policy(
                actor_id=admin_id, service_kind="daily", category_code=None, limits=limits
            ),
            what="the second save waiting for the first",
        )
    finally:
        other.close()
        engine.dispose()
    assert failure is None
    policy = policies.policy_for(service_kind="daily")
    assert (policy.accept.amount, policy.complete.amount) == (2, 4)
