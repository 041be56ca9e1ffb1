"""A street admin revoking a proxy agent's role (DELETE /memberships/<id>) is refused (409 agent_busy, naming
the errands) while errands of the communities it covers are in the agent's hands, which would otherwise be
left with an agent who may no longer carry them out; once reassigned or handed back, the role goes."""

from sqlalchemy import select

from backend.auth.models import RoleMembership
from backend.auth.roles import Role, ScopeType
from backend.auth.service import grant_role
from backend.db import db
from tests.errands.errand_helpers import HANDOVER, SUBSISTENCE_MATERIALS, accept, row


def _membership(world, person: str, scope_type: str = ScopeType.COMMUNITY) -> str:
    return db.session.scalar(
        select(RoleMembership.public_id).where(
            RoleMembership.user_id == world.users[person].id,
            RoleMembership.role == Role.PROXY_AGENT,
            RoleMembership.scope_type == scope_type,
        )
    )


def _revoke(client, auth, membership_id: str):
    return client.delete(f"/api/v1/memberships/{membership_id}", headers=auth("street_admin"))


def test_an_agent_with_errands_in_hand_keeps_the_role_until_they_are_reassigned(
    client, auth, create, act, world
):
    first = accept(act, world, create())
    second = accept(act, world, create(type="disability_certificate"))
    refused = _revoke(client, auth, _membership(world, "agent_a"))
    assert refused.status_code == 409, refused.data
    body = refused.get_json()
    numbers = [first["number"], second["number"]]
    assert body["code"] == "agent_busy"
    assert body["message"] == f"该代办员还有未办结的代办：{'、'.join(numbers)}，请先改派给其他代办员再撤销"
    assert body["details"]["errands"] == numbers
    # Still the community's agent, still carrying it out.
    act("agent_a", first, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)

    for errand in (first, second):
        act("secretary_a", errand, "assign", agent_id=world.users["agent_a2"].public_id)
    assert _revoke(client, auth, _membership(world, "agent_a")).status_code == 204
    assert client.get("/api/v1/errands/queue", headers=auth("agent_a")).status_code == 403
    assert row(first).agent_id == world.users["agent_a2"].id


def test_an_errand_out_of_the_agents_hands_does_not_hold_the_role(client, auth, create, act, world):
    errand = accept(act, world, create())
    act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    act("agent_a", errand, "lodge", office="街道社会救助窗口", receipt_number="R1")
    act("agent_a", errand, "record_result", outcome="refused", note="收入超过标准")
    act("agent_a", errand, "return_to_resident")  # handed back: the resident confirms it done
    cancelled = accept(act, world, create(type="disability_certificate"))
    act("resident_a1", cancelled, "cancel", reason="已自行办理")
    assert _revoke(client, auth, _membership(world, "agent_a")).status_code == 204


def test_an_agent_who_still_serves_the_community_another_way_may_lose_one_role(
    client, auth, create, act, world
):
    """Held in the community and in its street, the agent still serves the errand without the community
    role; the street's role, covering it too, goes only once nothing else covers the errand."""
    agent = world.users["agent_a"]
    grant_role(user=agent, role=Role.PROXY_AGENT, scope_type=ScopeType.STREET, scope_id=world.street.id)
    db.session.commit()
    errand = accept(act, world, create())
    assert _revoke(client, auth, _membership(world, "agent_a")).status_code == 204
    refused = _revoke(client, auth, _membership(world, "agent_a", ScopeType.STREET))
    assert refused.status_code == 409, refused.data
    assert refused.get_json()["details"]["errands"] == [errand["number"]]
    # An agent of another community is not held by this one's errands.
    assert _revoke(client, auth, _membership(world, "agent_b")).status_code == 204
