"""What a resident booked stays theirs after they remove their only residence (DELETE /me/residence): owning
the errand, not living in a grid now, is what lets them list it, confirm it done, rate or cancel it. Anyone
else is refused as before: 409 with their own allowed actions where they may see the errand, 404 where not."""

from tests.errands.errand_helpers import HANDOVER, SUBSISTENCE_MATERIALS, row


def _returned(create, act, world) -> dict:
    errand = create()
    act(
        "secretary_a",
        errand,
        "accept",
        agent_id=world.users["agent_a"].public_id,
        eligibility_note="户籍在本社区",
        materials=["application_form"],
    )
    act("agent_a", errand, "collect", materials=SUBSISTENCE_MATERIALS, handover=HANDOVER)
    act("agent_a", errand, "lodge", office="街道社会救助窗口", receipt_number="R1")
    act("agent_a", errand, "record_result", outcome="refused", note="收入超过标准")
    return act("agent_a", errand, "return_to_resident")


def _move_away(client, auth, world) -> None:
    headers = auth("resident_a1")
    left = client.delete(f"/api/v1/me/residence/{world.grid_a1.public_id}", headers=headers)
    assert left.status_code == 204, left.get_json()
    assert client.get("/api/v1/me", headers=headers).get_json()["roles"] == []


def test_a_resident_without_a_residence_lists_completes_rates_and_cancels_their_errands(
    client, auth, create, act, world
):
    returned = _returned(create, act, world)
    waiting = create()
    _move_away(client, auth, world)

    listed = client.get("/api/v1/errands", headers=auth("resident_a1"))
    assert listed.status_code == 200, listed.get_json()
    assert [e["id"] for e in listed.get_json()["items"]] == [waiting["id"], returned["id"]]
    assert act("resident_a1", returned, "complete")["state"] == "completed"
    rated = act("resident_a1", returned, "rate", level=5, comment="很周到")
    assert row(rated).rating == 5
    assert act("resident_a1", waiting, "cancel", reason="已搬走")["state"] == "cancelled"
    assert row(waiting).cancelled_by_resident
    # Booking a new errand still needs somewhere to live.
    body = {"type": "subsistence_allowance"}
    booking = client.post("/api/v1/errands", json=body, headers=auth("resident_a1"))
    assert (booking.status_code, booking.get_json()["code"]) == (403, "residence_required")


def test_someone_who_never_booked_lists_nothing(client, auth, create):
    create()
    for person in ("newcomer", "agent_a", "secretary_a", "resident_b1"):
        listed = client.get("/api/v1/errands", headers=auth(person))
        assert listed.status_code == 200, (person, listed.get_json())
        assert listed.get_json() == {"items": [], "next_cursor": None}, person


def test_only_the_errands_resident_rates_it(client, auth, create, act, world):
    errand = _returned(create, act, world)
    _move_away(client, auth, world)
    act("secretary_a", errand, "complete")
    # Those who see the errand are told what they may do with it instead (the state machine's 409).
    for person in ("secretary_a", "street_admin", "agent_a"):
        refused = act(person, errand, "rate", expect=409, level=1)
        assert (refused["code"], refused["details"]["allowed_actions"]) == ("illegal_action", []), person
    # Those who do not see it learn nothing of it.
    for person in ("resident_b1", "secretary_b", "agent_a2", "agent_b", "newcomer", "org_admin"):
        assert act(person, errand, "rate", expect=404, level=1)["code"] == "not_found", person
    assert row(errand).rating is None


def test_the_api_documents_who_acts_on_their_own_errands(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    own = "any signed-in user; own errands only"
    assert paths["/api/v1/errands"]["get"]["x-access"] == own
    assert paths["/api/v1/errands/{errand_id}/rate"]["post"]["x-access"] == own
    assert paths["/api/v1/errands/{errand_id}/cancel"]["post"]["x-access"] == (
        "any signed-in user; own errands, or as the errand's community secretary or street admin"
    )
    for action in ("complete", "record-info"):
        assert paths[f"/api/v1/errands/{{errand_id}}/{action}"]["post"]["x-access"] == (
            "any signed-in user; own errands, or as the errand's agent, community secretary or street admin"
        ), action
