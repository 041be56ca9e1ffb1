"""A volunteer who left comes off the organization's roster: refused (409, naming the orders) while they are
assigned to an order not yet done, so nothing in progress is left with nobody; once off, they see none of the
organization's orders and cannot be assigned; added again, they are back, under the name given."""

from sqlalchemy import select

from backend.auth.models import RoleMembership
from backend.db import db
from backend.organizations.models import Volunteer


def _url(world, volunteer_id: str | None = None) -> str:
    url = f"/api/v1/organizations/{world.organization.public_id}/volunteers"
    return f"{url}/{volunteer_id}" if volunteer_id else url


def _assigned(place, act, world) -> dict:
    order = act("secretary_a", place(), "dispatch", organization_ids=[world.organization.public_id])
    order = act("org_admin", order, "take")
    return act("org_admin", order, "assign", volunteer_ids=[world.volunteer_entry.public_id])


def test_a_volunteer_with_unfinished_orders_is_not_removed(client, auth, place, act, world):
    order = _assigned(place, act, world)
    refused = client.delete(_url(world, world.volunteer_entry.public_id), headers=auth("org_admin"))
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["code"] == "volunteer_busy"
    assert body["message"] == f"该志愿者还有未办结的工单：{order['number']}，请待工单办结后再移出"
    assert body["details"]["orders"] == [order["number"]]
    # Still on the roster, still doing it.
    roster = client.get(_url(world), headers=auth("org_admin")).get_json()["items"]
    assert [v["id"] for v in roster] == [world.volunteer_entry.public_id]
    assert act("volunteer", order, "start")["state"] == "in_progress"


def test_a_removed_volunteer_sees_no_orders_and_gets_no_assignments(client, auth, place, act, world):
    order = _assigned(place, act, world)
    order = act("volunteer", order, "resolve", note="已上门陪伴两小时")
    act("resident_a1", order, "confirm", level=5, tags=[], comment="很好")

    removed = client.delete(_url(world, world.volunteer_entry.public_id), headers=auth("org_admin"))
    assert removed.status_code == 204, removed.get_json()
    assert client.get(_url(world), headers=auth("org_admin")).get_json()["items"] == []
    # The role in the organization is gone; the roster entry stays for the orders they did (history).
    volunteer = world.users["volunteer"]
    assert db.session.scalar(select(RoleMembership.id).where(RoleMembership.user_id == volunteer.id)) is None
    assert db.session.get(Volunteer, world.volunteer_entry.id) is not None
    assert client.get("/api/v1/me/assignments", headers=auth("volunteer")).status_code == 403
    assert client.get(f"/api/v1/orders/{order['id']}", headers=auth("volunteer")).status_code == 404
    # The organization still reads who did it.
    done = client.get(f"/api/v1/orders/{order['id']}", headers=auth("org_admin")).get_json()
    assert [v["name"] for v in done["volunteers"]] == ["李志愿"]

    second = act("secretary_a", place(description="想找人聊聊天"), "dispatch",
                 organization_ids=[world.organization.public_id])  # fmt: skip
    second = act("org_admin", second, "take")
    refused = act("org_admin", second, "assign", expect=422, volunteer_ids=[world.volunteer_entry.public_id])
    assert refused["details"]["volunteer_ids"] == ["只能指派本组织在册的志愿者"]

    # Removing again: they are not on the roster.
    again = client.delete(_url(world, world.volunteer_entry.public_id), headers=auth("org_admin"))
    assert again.status_code == 404

    # Back again, under the name now given, and assignable.
    readded = client.post(
        _url(world),
        json={"user_id": volunteer.public_id, "display_name": "李志愿（回归）", "skills": "陪伴、理发"},
        headers=auth("org_admin"),
    )
    assert readded.status_code == 201
    assert readded.get_json()["id"] == world.volunteer_entry.public_id
    assert (readded.get_json()["display_name"], readded.get_json()["skills"]) == (
        "李志愿（回归）",
        "陪伴、理发",
    )
    second = act("org_admin", second, "assign", volunteer_ids=[world.volunteer_entry.public_id])
    assert [v["name"] for v in second["volunteers"]] == ["李志愿（回归）"]
    mine = client.get("/api/v1/me/assignments", headers=auth("volunteer")).get_json()["items"]
    # Their assignments again, the one they did before leaving among them.
    assert sorted(o["id"] for o in mine) == sorted([order["id"], second["id"]])


def test_who_may_remove_a_volunteer(client, auth, world):
    url = _url(world, world.volunteer_entry.public_id)
    for person in ("other_org_admin", "secretary_a", "volunteer", "other_street_admin"):
        assert client.delete(url, headers=auth(person)).status_code == 403, person
    # Another organization's volunteer id, or none at all, is not on this roster.
    assert client.delete(_url(world, "vl_nope"), headers=auth("org_admin")).status_code == 404
    # The street's admin manages the street's organizations (as they change them, PATCH).
    assert client.delete(url, headers=auth("street_admin")).status_code == 204


def _volunteer_membership(world) -> str:
    user = world.users["volunteer"]
    return db.session.scalar(
        select(RoleMembership.public_id).where(
            RoleMembership.user_id == user.id, RoleMembership.role == "volunteer"
        )
    )


def test_revoking_a_busy_volunteers_role_is_refused_as_removing_them_is(client, auth, place, act, world):
    """A street admin revoking the volunteer role (DELETE /memberships/<id>) takes them off the roster as
    removing them does, so it is refused alike while they are assigned to an order not yet done."""
    order = _assigned(place, act, world)
    url = f"/api/v1/memberships/{_volunteer_membership(world)}"
    refused = client.delete(url, headers=auth("street_admin"))
    assert refused.status_code == 409, refused.data
    body = refused.get_json()
    assert body["code"] == "volunteer_busy"
    assert body["message"] == f"该志愿者还有未办结的工单：{order['number']}，请待工单办结后再移出"
    assert body["details"]["orders"] == [order["number"]]
    # Still on the roster, still doing it.
    roster = client.get(_url(world), headers=auth("org_admin")).get_json()["items"]
    assert [v["id"] for v in roster] == [world.volunteer_entry.public_id]
    order = act("volunteer", order, "resolve", note="已上门陪伴两小时")
    # Done with it (resolved, waiting on the resident): the role may go.
    assert client.delete(url, headers=auth("street_admin")).status_code == 204
    assert client.get(_url(world), headers=auth("org_admin")).get_json()["items"] == []
