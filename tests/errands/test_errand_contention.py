"""Errands under contention. One appointment, one errand: of several requests making an errand from one visit
at the same instant (separate taps, not retries of one), one makes it and links the visit; the others fail.
A type added twice at once is added once; edits of one type at once each become the next version."""

import requests
from sqlalchemy import func, select

from backend.appointments.models import Booking
from backend.db import db
from backend.errands.models import Errand, ErrandType, ErrandTypeVersion
from tests.errands.errand_helpers import ELDERLY_ALLOWANCE
from tests.factories import send_at_once

CONTENDERS = 6


def _at_once(url: str, body: dict, headers: dict) -> list[requests.Response]:
    return send_at_once([(url, body, headers)] * CONTENDERS)


def test_errands_made_from_one_appointment_at_once_make_one(book, auth, server):
    appointment = book("resident_a1", "subsistence_allowance")
    body = {"type": "subsistence_allowance", "appointment_id": appointment}
    responses = _at_once(f"{server}/api/v1/errands", body, auth("resident_a1"))

    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 201 and set(codes[1:]) <= {409, 422}, [r.json() for r in responses]
    made = next(r.json() for r in responses if r.status_code == 201)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Errand)) == 1
    linked = db.session.scalar(select(Booking.errand_id).where(Booking.public_id == appointment))
    assert linked == db.session.scalar(select(Errand.id).where(Errand.public_id == made["id"]))


def test_a_type_added_twice_at_once_is_added_once(auth, server):
    for n in range(3):
        body = {"code": f"elderly_allowance_{n}", "definition": ELDERLY_ALLOWANCE}
        responses = _at_once(f"{server}/api/v1/errand-types", body, auth("street_admin"))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [422] * (CONTENDERS - 1), [r.json() for r in responses]
        refused = [r.json() for r in responses if r.status_code == 422]
        assert all(r["details"] == {"code": ["该代办类型编码已存在"]} for r in refused)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(ErrandType.code.like("elderly_allowance_%"))) == 3


def test_edits_of_one_type_at_once_each_become_the_next_version(auth, server):
    url = f"{server}/api/v1/errand-types/subsistence_allowance/versions"
    responses = _at_once(url, {"definition": ELDERLY_ALLOWANCE}, auth("street_admin"))
    assert [r.status_code for r in responses] == [201] * CONTENDERS, [r.json() for r in responses]
    db.session.expire_all()
    kind = db.session.scalar(select(ErrandType).where(ErrandType.code == "subsistence_allowance"))
    versions = db.session.scalars(
        select(ErrandTypeVersion.version).where(ErrandTypeVersion.type_id == kind.id)
    ).all()
    assert sorted(versions) == list(range(1, CONTENDERS + 2)) and kind.current_version == CONTENDERS + 1
