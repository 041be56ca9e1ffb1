"""Social organizations: who they are, where and what they serve, and their volunteer rosters."""

from sqlalchemy import select, update

from backend.auth.access import ScopeNode, holds
from backend.auth.models import RoleMembership, User
from backend.auth.roles import Role, ScopeType
from backend.community.models import Community, Street
from backend.db import db, flush_unless_taken
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.organizations.models import (
    Organization,
    OrganizationCategory,
    Volunteer,
    organization_communities,
)
from backend.pagination import paginate


def get_organization(public_id: str) -> Organization:
    org = db.session.scalar(select(Organization).where(Organization.public_id == public_id))
    if org is None:
        raise NotFound("社会组织不存在")
    return org


def organization_scope(view_arg: str = "organization_id"):
    """A scope resolver for routes addressing an organization by its public id."""

    def resolve(view_args: dict) -> list[ScopeNode]:
        org = get_organization(view_args[view_arg])
        return [(ScopeType.ORGANIZATION.value, org.id), (ScopeType.STREET.value, org.street_id)]

    return resolve


def _communities(public_ids: list[str], street: Street) -> list[Community]:
    found = list(
        db.session.scalars(
            select(Community).where(Community.public_id.in_(public_ids), Community.street_id == street.id)
        )
    )
    missing = sorted(set(public_ids) - {c.public_id for c in found})
    if missing:
        raise ValidationFailed(details={"community_ids": [f"本街道没有这些社区: {', '.join(missing)}"]})
    return found


def create_organization(
    *,
    actor,
    street: Street,
    name: str,
    description: str,
    capacity: int,
    community_ids: list[str],
    categories: list[str],
) -> Organization:
    """Register an organization in the street the actor administers; the caller commits."""
    if not holds(actor, [Role.STREET_ADMIN], [(ScopeType.STREET.value, street.id)]):
        raise Forbidden("只能在本街道登记社会组织")
    if db.session.scalar(
        select(Organization.id).where(Organization.street_id == street.id, Organization.name == name)
    ):
        raise ValidationFailed(details={"name": ["本街道已有同名组织"]})
    org = Organization(
        street_id=street.id,
        name=name,
        description=description,
        capacity=capacity,
        communities=_communities(community_ids, street),
        categories=_serving(categories),
    )
    db.session.add(org)
    flush_unless_taken(ValidationFailed(details={"name": ["本街道已有同名组织"]}))
    return org


def _lock(org: Organization) -> None:
    """Hold the organization until the commit, then read it and its categories afresh: changes of one
    organization's categories or roster made at the same moment queue up instead of both writing the rows
    the other writes (a unique-key failure, a 500). PostgreSQL locks the row; SQLite takes no lock for a
    read, so there the first write (a no-op UPDATE) takes the database's."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(Organization.id).where(Organization.id == org.id).with_for_update())
    else:
        db.session.execute(
            update(Organization)
            .where(Organization.id == org.id)
            .values(name=Organization.name)
            .execution_options(synchronize_session=False)
        )
    db.session.expire(org)


def _serving(codes: list[str]) -> list[OrganizationCategory]:
    """The catalog's categories an organization serves; a code the catalog lacks is refused, as the
    organization would never be recommended for what was meant."""
    from backend.catalog.service import catalog

    unknown = sorted(set(codes) - set(catalog().by_code))
    if unknown:
        raise ValidationFailed(details={"categories": [f"服务分类不存在：{', '.join(unknown)}"]})
    return [OrganizationCategory(category_code=c) for c in sorted(set(codes))]


def update_organization(
    *, org: Organization, description=None, capacity=None, categories=None
) -> Organization:
    _lock(org)
    if description is not None:
        org.description = description
    if capacity is not None:
        org.capacity = capacity
    if categories is not None:
        org.categories = _serving(categories)
    db.session.commit()
    return org


def organizations_page(*, community_id: int | None, category: str | None, limit: int, cursor: str | None):
    query = select(Organization)
    if community_id is not None:
        query = query.where(
            Organization.id.in_(
                select(organization_communities.c.organization_id).where(
                    organization_communities.c.community_id == community_id
                )
            )
        )
    if category:
        query = query.where(
            Organization.id.in_(
                select(OrganizationCategory.organization_id).where(
                    OrganizationCategory.category_code == category
                )
            )
        )
    return paginate(query, Organization.id, limit=limit, cursor=cursor)


def _roster_user(public_id: str) -> User:
    user = db.session.scalar(select(User).where(User.public_id == public_id))
    if user is None:
        raise ValidationFailed("用户不存在", details={"user_id": ["用户不存在"]})
    # A disabled account cannot sign in: orders assigned to it would wait for nobody.
    if not user.is_active:
        raise ValidationFailed("该用户账号已停用", details={"user_id": ["该用户账号已停用"]})
    return user


def on_roster():
    """The condition a Volunteer row is on its organization's roster by: its user holds the volunteer role
    in that organization. Removing a volunteer takes the role away and keeps the row, which the orders they
    did still name."""
    return (
        select(RoleMembership.id)
        .where(
            RoleMembership.user_id == Volunteer.user_id,
            RoleMembership.role == Role.VOLUNTEER,
            RoleMembership.scope_type == ScopeType.ORGANIZATION,
            RoleMembership.scope_id == Volunteer.organization_id,
        )
        .exists()
    )


def add_volunteer(
    *, org: Organization, user_public_id: str, display_name: str, skills: str | None = None
) -> Volunteer:
    """Put a user on the organization's roster and give them the volunteer role there (idempotent); someone
    already on it, or back after leaving, is kept under the name given, and the skills if given."""
    from backend.auth.service import grant_role

    user = _roster_user(user_public_id)
    _lock(org)
    volunteer = db.session.scalar(
        select(Volunteer).where(Volunteer.organization_id == org.id, Volunteer.user_id == user.id)
    )
    if volunteer is None:
        volunteer = Volunteer(
            organization_id=org.id, user_id=user.id, display_name=display_name, skills=skills or ""
        )
        db.session.add(volunteer)
    else:
        volunteer.display_name = display_name
        if skills is not None:
            volunteer.skills = skills
    grant_role(user=user, role=Role.VOLUNTEER, scope_type=ScopeType.ORGANIZATION, scope_id=org.id)
    db.session.commit()
    return volunteer


def remove_volunteer(*, org: Organization, volunteer_public_id: str) -> None:
    """Take a volunteer off the roster (the volunteer role in the organization goes; the entry stays for the
    orders they did); refused (409, naming them) while they are assigned to an order not yet done."""
    _lock(org)
    volunteer = roster_entry(organization_id=org.id, public_id=volunteer_public_id)
    membership = None
    if volunteer is not None:
        membership = db.session.scalar(
            select(RoleMembership).where(
                RoleMembership.user_id == volunteer.user_id,
                RoleMembership.role == Role.VOLUNTEER,
                RoleMembership.scope_type == ScopeType.ORGANIZATION,
                RoleMembership.scope_id == org.id,
            )
        )
    if membership is None:
        db.session.rollback()
        raise NotFound("本组织名册中没有该志愿者")
    refuse_if_busy(volunteer)
    db.session.delete(membership)
    db.session.commit()


def roster_entry(
    *, organization_id: int, public_id: str | None = None, user_id: int | None = None
) -> Volunteer | None:
    """The organization's roster entry with this public id or of this user (on the roster or not), held on
    PostgreSQL against an assignment of the same volunteer at the same moment (orders.service.assign takes
    the same lock): one waits for the other and sees what it did."""
    query = select(Volunteer).where(Volunteer.organization_id == organization_id)
    if public_id is not None:
        query = query.where(Volunteer.public_id == public_id)
    if user_id is not None:
        query = query.where(Volunteer.user_id == user_id)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def refuse_if_busy(volunteer: Volunteer) -> None:
    """Refuse to take the volunteer off their organization's roster (removing them, or revoking their
    volunteer role there) while they are assigned to an order of it not yet done: 409 volunteer_busy, naming
    the orders. Read under roster_entry's lock."""
    from backend.orders.models import Order, OrderAssignment
    from backend.orders.service import OPEN_STATES

    busy = list(
        db.session.scalars(
            select(Order.number)
            .join(OrderAssignment, OrderAssignment.order_id == Order.id)
            .where(
                OrderAssignment.volunteer_id == volunteer.id,
                Order.organization_id == volunteer.organization_id,
                Order.state.in_(sorted(OPEN_STATES)),
            )
            .order_by(Order.id)
        )
    )
    if busy:
        db.session.rollback()
        raise Conflict(
            f"该志愿者还有未办结的工单：{'、'.join(busy)}，请待工单办结后再移出",
            code="volunteer_busy",
            details={"orders": busy},
        )


def list_volunteers(*, org: Organization) -> list[Volunteer]:
    """The organization's roster (those who left are not on it)."""
    return list(
        db.session.scalars(
            select(Volunteer).where(Volunteer.organization_id == org.id, on_roster()).order_by(Volunteer.id)
        )
    )
