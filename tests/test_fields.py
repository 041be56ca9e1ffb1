"""Shared fields and query rules (backend.fields), through the endpoints that use them."""

import pytest

PERIOD_QUERIES = [
    ("/api/v1/orders/stats", "2026-11-30T00:00:00+08:00", "2026-11-01T00:00:00+08:00"),
    ("/api/v1/sla/overdue", "2026-11-30T00:00:00+08:00", "2026-11-01T00:00:00+08:00"),
    ("/api/v1/errands/metrics", "2026-11-30", "2026-11-01"),
]


@pytest.mark.parametrize(("path", "later", "earlier"), PERIOD_QUERIES)
def test_a_period_that_ends_before_it_begins_is_refused_by_field(client, auth, path, later, earlier):
    headers = auth("street_admin")
    backwards = client.get(path, query_string={"since": later, "until": earlier}, headers=headers)
    assert backwards.status_code == 422
    assert backwards.get_json()["details"] == {"until": ["须晚于开始时间（since）"]}
    empty = client.get(path, query_string={"since": later, "until": later}, headers=headers)
    assert empty.status_code == 422 and "until" in empty.get_json()["details"]
    forwards = client.get(path, query_string={"since": earlier, "until": later}, headers=headers)
    assert forwards.status_code == 200, forwards.get_json()
