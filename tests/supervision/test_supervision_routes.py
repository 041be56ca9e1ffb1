"""督办 records through the API: secretaries see their community's, street admins the street's and close."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.errors import Conflict
from backend.sla import clocks
from backend.sla.calendar import Unit
from backend.sla.rules import Limit
from backend.supervision import service
from backend.supervision.models import Supervision


def overdue(world, community, subject_id: int):
    start = clock.now() - timedelta(hours=2)
    sla_clock = clocks.start(
        subject_type="order",
        subject_id=subject_id,
        name="accept",
        limit=Limit(1, Unit.HOURS),
        community_id=community.id,
        at=start,
    )
    db.session.flush()
    assert clocks.raise_overdue(clock_id=sla_clock.id)
    db.session.commit()


def test_secretaries_see_their_community_and_street_admins_close(client, auth, world):
    overdue(world, world.community_a, 1)
    overdue(world, world.community_b, 2)

    mine = client.get("/api/v1/supervisions", headers=auth("secretary_a")).get_json()["items"]
    assert [(r["reason"], r["reason_label"], r["status"]) for r in mine] == [("overdue", "超时未办", "open")]
    assert mine[0]["raised_by_system"] is True
    everything = client.get("/api/v1/supervisions", headers=auth("street_admin")).get_json()["items"]
    assert len(everything) == 2
    theirs = next(r for r in everything if r["id"] != mine[0]["id"])
    assert client.get(f"/api/v1/supervisions/{theirs['id']}", headers=auth("secretary_a")).status_code == 404
    assert client.get("/api/v1/supervisions", headers=auth("other_street_admin")).get_json()["items"] == []

    url = f"/api/v1/supervisions/{mine[0]['id']}/close"
    assert (
        client.post(url, json={"resolution": "已约谈承接组织"}, headers=auth("secretary_a")).status_code
        == 403
    )
    response = client.post(url, json={"resolution": "已约谈承接组织"}, headers=auth("street_admin"))
    assert response.status_code == 200 and response.get_json()["status"] == "closed"
    again = client.post(url, json={"resolution": "再次结束"}, headers=auth("street_admin"))
    assert again.status_code == 409
    open_only = client.get("/api/v1/supervisions?status=open", headers=auth("street_admin")).get_json()
    assert [r["id"] for r in open_only["items"]] == [theirs["id"]]


def test_bad_input_is_refused_by_field(client, auth, world):
    overdue(world, world.community_a, 1)
    headers = auth("street_admin")
    record = client.get("/api/v1/supervisions", headers=headers).get_json()["items"][0]
    response = client.post(f"/api/v1/supervisions/{record['id']}/close", json={}, headers=headers)
    assert response.status_code == 422 and "resolution" in response.get_json()["details"]
    assert client.get("/api/v1/supervisions?status=maybe", headers=headers).status_code == 422
    assert client.get("/api/v1/supervisions/sv_nope", headers=headers).status_code == 404
    assert client.get("/api/v1/supervisions", headers=auth("resident_a1")).status_code == 403


def test_of_two_admins_closing_at_once_the_second_is_refused(world):
    overdue(world, world.community_a, 1)
    record = db.session.scalar(select(Supervision))
    assert record.status == "open"
    # The other admin's close commits between this request reading the record and writing it.
    engine = sa.create_engine(db.engine.url)
    try:
        with engine.begin() as other:
            other.execute(
                sa.update(Supervision)
                .where(Supervision.id == record.id)
                .values(status="closed", resolution="已约谈承接组织", closed_at=clock.now())
            )
    finally:
        engine.dispose()
    with pytest.raises(Conflict):
        service.close(record=record, actor_id=world.users["street_admin"].id, resolution="已电话督促")
    db.session.rollback()
    assert db.session.get(Supervision, record.id).resolution == "已约谈承接组织"
