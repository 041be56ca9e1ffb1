"""The street's structure and the scope arithmetic every authorization check relies on."""

from dataclasses import dataclass

from sqlalchemy import func, select

from backend import localcache
from backend.auth.access import ScopeNode
from backend.auth.roles import ScopeType
from backend.community.models import Community, Grid, Street
from backend.db import autocommit, db, flush_unless_taken
from backend.errors import Forbidden, NotFound, ValidationFailed


@dataclass(frozen=True, slots=True)
class Place:
    """A community or a grid as responses name it."""

    id: int
    public_id: str
    name: str
    parent_id: int  # a community's street, a grid's community


@dataclass(frozen=True, slots=True)
class Places:
    communities: dict[int, Place]
    grids: dict[int, Place]
    communities_by_public_id: dict[str, Place]
    grids_by_public_id: dict[str, Place]


_places = localcache.LocalCache("places", max_entries=1, max_age=3600.0)
for _model in (Street, Community, Grid):
    localcache.watch(_model, _places)


def _load_places() -> Places:
    with autocommit() as connection:
        communities = connection.execute(
            select(Community.id, Community.public_id, Community.name, Community.street_id)
        ).all()
        grids = connection.execute(select(Grid.id, Grid.public_id, Grid.name, Grid.community_id)).all()
    communities = [Place(*r) for r in communities]
    grids = [Place(*r) for r in grids]
    return Places(
        {c.id: c for c in communities},
        {g.id: g for g in grids},
        {c.public_id: c for c in communities},
        {g.public_id: g for g in grids},
    )


def places() -> Places:
    """Every community and grid by id (kept in the process until one changes)."""
    return _places.get("all", _load_places)


def ancestors(scope_type: str, scope_id: int) -> list[ScopeNode]:
    """Return the node and every node above it: a grid lies in its community, which lies in its street."""
    nodes: list[ScopeNode] = [(scope_type, scope_id)]
    if scope_type == ScopeType.GRID:
        grid = db.session.get(Grid, scope_id)
        if grid is None:
            return nodes
        scope_type, scope_id = ScopeType.COMMUNITY, grid.community_id
        nodes.append((scope_type, scope_id))
    if scope_type == ScopeType.COMMUNITY:
        community = db.session.get(Community, scope_id)
        if community is not None:
            nodes.append((ScopeType.STREET, community.street_id))
    if scope_type == ScopeType.ORGANIZATION:
        from backend.organizations.models import Organization

        org = db.session.get(Organization, scope_id)
        if org is not None:
            nodes.append((ScopeType.STREET, org.street_id))
    return [(str(t), i) for t, i in nodes]


def get_street(public_id: str) -> Street:
    street = db.session.scalar(select(Street).where(Street.public_id == public_id))
    if street is None:
        raise NotFound("街道不存在")
    return street


def get_community(public_id: str) -> Community:
    community = db.session.scalar(select(Community).where(Community.public_id == public_id))
    if community is None:
        raise NotFound("社区不存在")
    return community


def get_grid(public_id: str) -> Grid:
    grid = db.session.scalar(select(Grid).where(Grid.public_id == public_id))
    if grid is None:
        raise NotFound("网格不存在")
    return grid


def list_streets() -> list[Street]:
    return list(db.session.scalars(select(Street).order_by(Street.id)))


def list_communities(*, street_id: int | None = None) -> list[Community]:
    query = select(Community).order_by(Community.id)
    if street_id is not None:
        query = query.where(Community.street_id == street_id)
    return list(db.session.scalars(query))


def create_street(*, name: str) -> Street:
    street = Street(name=name)
    db.session.add(street)
    db.session.commit()
    return street


def create_community(*, actor, street: Street, name: str) -> Community:
    """Add a community to the street the actor administers; the caller commits."""
    from backend.auth.access import holds
    from backend.auth.roles import Role

    if not holds(actor, [Role.STREET_ADMIN], [(ScopeType.STREET.value, street.id)]):
        raise Forbidden("只能在本街道新建社区")
    duplicate = ValidationFailed("社区名称重复", details={"name": ["该街道已有同名社区"]})
    if db.session.scalar(select(Community).where(Community.street_id == street.id, Community.name == name)):
        raise duplicate
    community = Community(street=street, name=name)
    db.session.add(community)
    flush_unless_taken(duplicate)
    return community


def create_grid(*, community: Community, name: str) -> Grid:
    """Add a grid to a community; the caller commits."""
    duplicate = ValidationFailed("网格名称重复", details={"name": ["该社区已有同名网格"]})
    if db.session.scalar(select(Grid).where(Grid.community_id == community.id, Grid.name == name)):
        raise duplicate
    grid = Grid(community=community, name=name)
    db.session.add(grid)
    flush_unless_taken(duplicate)
    return grid


def community_scope(view_arg: str = "community_id"):
    """A scope resolver for routes addressing a community by its public id."""

    def resolve(view_args: dict) -> list[ScopeNode]:
        community = get_community(view_args[view_arg])
        return [(ScopeType.COMMUNITY.value, community.id), (ScopeType.STREET.value, community.street_id)]

    return resolve


def grid_scope(view_arg: str = "grid_id"):
    """A scope resolver for routes addressing a grid by its public id: the grid, its community, its street."""

    def resolve(view_args: dict) -> list[ScopeNode]:
        grid = get_grid(view_args[view_arg])
        return [
            (ScopeType.GRID.value, grid.id),
            (ScopeType.COMMUNITY.value, grid.community_id),
            (ScopeType.STREET.value, grid.community.street_id),
        ]

    return resolve


def street_scope(view_arg: str = "street_id"):
    def resolve(view_args: dict) -> list[ScopeNode]:
        return [(ScopeType.STREET.value, get_street(view_args[view_arg]).id)]

    return resolve


def residents_page(
    *, community: Community | None = None, grid: Grid | None = None, limit: int, cursor: str | None
) -> dict:
    """The registered residents of a community, or of one grid, a keyset page at a time."""
    from backend.auth.models import RoleMembership, User
    from backend.auth.roles import Role
    from backend.pagination import paginate

    if grid is not None:
        grid_ids = select(Grid.id).where(Grid.id == grid.id)
    else:
        grid_ids = select(Grid.id).where(Grid.community_id == community.id)
    resident_in_grids = (
        RoleMembership.role == Role.RESIDENT,
        RoleMembership.scope_type == ScopeType.GRID,
        RoleMembership.scope_id.in_(grid_ids),
    )
    query = select(User).where(User.id.in_(select(RoleMembership.user_id).where(*resident_in_grids)))
    page = paginate(query, User.id, limit=limit, cursor=cursor)
    # Each resident's grid among those listed (one may be registered in several, in other communities too),
    # read for the whole page at once.
    homes = db.session.execute(
        select(RoleMembership.user_id, func.min(RoleMembership.scope_id))
        .where(*resident_in_grids, RoleMembership.user_id.in_([u.id for u in page["items"]]))
        .group_by(RoleMembership.user_id)
    ).all()
    grids = places().grids
    home_of = {user_id: grids[grid_id].public_id for user_id, grid_id in homes}
    page["items"] = [
        ListedResident(u.public_id, u.nickname, u.real_name, u.phone, home_of.get(u.id))
        for u in page["items"]
    ]
    return page


@dataclass(frozen=True)
class ListedResident:
    """A resident as a community's or grid's list shows them (community.schemas.ResidentSchema): with their
    grid there."""

    public_id: str
    nickname: str | None
    real_name: str | None
    phone: str | None
    grid_public_id: str | None


def proxy_agents(*, community: Community) -> list:
    """The community's proxy agents (代办员), by name, for a secretary assigning errands."""
    from backend.auth.models import RoleMembership, User
    from backend.auth.roles import Role

    return list(
        db.session.scalars(
            select(User)
            .join(RoleMembership, RoleMembership.user_id == User.id)
            .where(
                RoleMembership.role == Role.PROXY_AGENT,
                RoleMembership.scope_type == ScopeType.COMMUNITY,
                RoleMembership.scope_id == community.id,
                User.is_active.is_(True),
            )
            .order_by(User.id)
        )
    )


def overseen_community_ids(user) -> list[int]:
    """Return the communities a person oversees: a street admin's whole street, a secretary's own."""
    from backend.auth.roles import Role

    community_ids = {m.scope_id for m in user.memberships if m.role == Role.SECRETARY}
    street_ids = {m.scope_id for m in user.memberships if m.role == Role.STREET_ADMIN}
    if street_ids:
        community_ids |= {c.id for c in places().communities.values() if c.parent_id in street_ids}
    return sorted(community_ids)
