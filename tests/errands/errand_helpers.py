"""Helpers shared by the errand tests (fixtures live in conftest.py)."""

from sqlalchemy import select

from backend.db import db
from backend.errands.models import Errand
from backend.privacy import service as privacy
from tests.images import PNG  # noqa: F401 - the errand tests import it from here

HANDOVER = {"number": "JJ-0001", "handed_over_by": "王秀英", "received_by": "代办员小李", "signed": True}
# A type a street admin adds after the shipped three.
ELDERLY_ALLOWANCE = {
    "name": "高龄津贴申领",
    "office": "街道社会事务办",
    "materials": [{"code": "id_copy", "name": "身份证复印件", "required": True}],
    "steps": [
        {
            "state": "accepted",
            "name": "收件",
            "owner": "proxy_agent",
            "limit": {"amount": 3, "unit": "working_days"},
        }
    ],
    "result": {"description": "发放或不予发放", "fields": ["amount_fen"]},
}
SUBSISTENCE_MATERIALS = [
    "application_form",
    "household_register",
    "id_copies",
    "financial_check_authorization",
    "income_property_proof",
]


def consent(world, person: str, *kinds: str) -> None:
    for kind in kinds:
        privacy.grant_consent(user_id=world.users[person].id, kind=kind, text_version="2026-11")


def row(errand: dict) -> Errand:
    db.session.expire_all()
    return db.session.scalar(select(Errand).where(Errand.public_id == errand["id"]))


def accept(act, world, errand: dict, note: str = "资格初审通过") -> dict:
    """The secretary accepts the errand (受理) and gives it to agent_a."""
    agent = world.users["agent_a"].public_id
    return act("secretary_a", errand, "accept", agent_id=agent, eligibility_note=note)
