"""Demo data: one street, its communities and grids, organizations, staff and residents.

Every demo person signs in through the fake WeChat server with a fixed openid (``demo-...``), so the demo and
the scripted phones can act as any of them. Idempotent, and refused in production.
"""

from sqlalchemy import select

from backend.auth.models import User
from backend.auth.roles import Role, ScopeType
from backend.auth.service import grant_role
from backend.catalog.models import ServiceCategory
from backend.catalog.service import load_catalog, shipped_catalog
from backend.community.models import Community, Grid, Street
from backend.db import db
from backend.errands.service import seed_errand_types
from backend.organizations.models import Organization, OrganizationCategory, Volunteer
from backend.privacy import service as privacy

STREET_NAME = "幸福街道"
COMMUNITIES = ["阳光社区", "和平社区", "东湖社区", "新华社区"]
GRIDS_PER_COMMUNITY = 3
ORGANIZATIONS = [
    ("夕阳红养老服务中心", ["elderly_care", "companionship", "health_check"], 20),
    ("邻里守望志愿服务队", ["companionship", "disability_support", "child_care"], 15),
    ("安居家电维修服务社", ["home_repair", "urgent_repair"], 12),
    ("阳光法律援助工作站", ["legal_advice", "mediation"], 8),
    ("心语心理咨询中心", ["counselling"], 6),
    ("和美调解委员会", ["mediation"], 10),
    ("红十字应急救援队", ["emergency_help", "urgent_repair"], 10),
    ("巧手家政服务合作社", ["cleaning", "elderly_care"], 18),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["秀英", "桂兰", "建国", "玉兰", "志强", "淑珍", "德明", "海燕", "国华", "丽华", "建华", "凤英"]
RESIDENTS = 60


class DemoRefused(RuntimeError):
    pass


def _user(openid: str, nickname: str, real_name: str = "") -> User:
    user = db.session.scalar(select(User).where(User.openid == openid))
    if user is None:
        user = User(openid=openid, nickname=nickname, real_name=real_name)
        db.session.add(user)
        db.session.flush()
    return user


def seed(*, production: bool = False) -> dict:
    """Load the demo data unless it is there already; return counts of what exists."""
    if production:
        raise DemoRefused("demo data is never loaded in production")
    street = db.session.scalar(select(Street).where(Street.name == STREET_NAME))
    if street is None:
        _seed_structure_and_people()
        db.session.commit()
    load_catalog(shipped_catalog())
    seed_errand_types()
    return {
        "streets": db.session.query(Street).count(),
        "communities": db.session.query(Community).count(),
        "grids": db.session.query(Grid).count(),
        "organizations": db.session.query(Organization).count(),
        "users": db.session.query(User).count(),
        "categories": db.session.query(ServiceCategory).count(),
    }


def _seed_structure_and_people() -> None:
    street = Street(name=STREET_NAME)
    db.session.add(street)
    db.session.flush()
    admin = _user("demo-street-admin", "街道管理员", "周主任")
    grant_role(user=admin, role=Role.STREET_ADMIN, scope_type=ScopeType.STREET, scope_id=street.id)

    grids: list[Grid] = []
    communities: list[Community] = []
    for ci, name in enumerate(COMMUNITIES, start=1):
        community = Community(street=street, name=name)
        db.session.add(community)
        db.session.flush()
        communities.append(community)
        secretary = _user(f"demo-secretary-{ci}", f"{name}书记", f"{SURNAMES[ci]}书记")
        grant_role(user=secretary, role=Role.SECRETARY, scope_type=ScopeType.COMMUNITY, scope_id=community.id)
        agent = _user(f"demo-agent-{ci}", f"{name}代办员", f"{SURNAMES[ci + 5]}代办")
        grant_role(user=agent, role=Role.PROXY_AGENT, scope_type=ScopeType.COMMUNITY, scope_id=community.id)
        for gi in range(1, GRIDS_PER_COMMUNITY + 1):
            grid = Grid(community=community, name=f"第{gi}网格")
            db.session.add(grid)
            db.session.flush()
            grids.append(grid)
            worker = _user(f"demo-grid-worker-{ci}-{gi}", f"{name}第{gi}网格员")
            grant_role(user=worker, role=Role.GRID_WORKER, scope_type=ScopeType.GRID, scope_id=grid.id)

    for oi, (name, categories, capacity) in enumerate(ORGANIZATIONS, start=1):
        org = Organization(
            street_id=street.id,
            name=name,
            description=f"{name}，服务{STREET_NAME}居民。",
            capacity=capacity,
            communities=communities if oi % 2 else communities[: 2 + oi % 3],
            categories=[OrganizationCategory(category_code=c) for c in categories],
        )
        db.session.add(org)
        db.session.flush()
        org_admin = _user(f"demo-org-admin-{oi}", f"{name}负责人")
        grant_role(user=org_admin, role=Role.ORG_ADMIN, scope_type=ScopeType.ORGANIZATION, scope_id=org.id)
        for vi in range(1, 4):
            person = _user(f"demo-volunteer-{oi}-{vi}", f"志愿者{oi}-{vi}")
            db.session.add(Volunteer(organization_id=org.id, user_id=person.id, display_name=person.nickname))
            grant_role(user=person, role=Role.VOLUNTEER, scope_type=ScopeType.ORGANIZATION, scope_id=org.id)

    for ri in range(1, RESIDENTS + 1):
        real_name = SURNAMES[ri % len(SURNAMES)] + GIVEN[ri % len(GIVEN)]
        resident = _user(f"demo-resident-{ri}", real_name, real_name)
        grid = grids[ri % len(grids)]
        grant_role(user=resident, role=Role.RESIDENT, scope_type=ScopeType.GRID, scope_id=grid.id)
        privacy.grant_consent(user_id=resident.id, kind="phone", text_version=privacy.CURRENT_CONSENT_VERSION)
        privacy.store(resident, "phone", f"138{ri:08d}", subject_user_id=resident.id)
