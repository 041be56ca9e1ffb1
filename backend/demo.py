"""Demo data: one street, its communities and grids, organizations, staff and residents; a service point
with weekly slots per community; and a month of history (orders, errands, appointments) made through the
domain services, so every screen and report shows something real.

Every demo person signs in through the fake WeChat server with a fixed openid (``demo-...``), so the demo and
the scripted phones can act as any of them. Idempotent, deterministic (seeded random), and refused in
production.

The history is written by the services themselves with the clock set back to each event's moment (see
``_at``): timestamps, events, SLA clocks and scheduled jobs agree. Jobs due in the past (SLA cards, 督办 of
overdue orders, notices) run when the demo's worker starts, as they would have.
"""

import random
from contextlib import contextmanager
from datetime import datetime, time, timedelta

from sqlalchemy import select

from backend import clock
from backend.appointments import service as appointments
from backend.appointments.models import ServicePoint
from backend.auth.models import User
from backend.auth.roles import Role, ScopeType
from backend.auth.service import grant_role
from backend.catalog.models import ServiceCategory
from backend.catalog.service import load_catalog, shipped_catalog
from backend.community.models import Community, Grid, Street
from backend.db import db
from backend.errands import service as errands
from backend.errands.models import Errand
from backend.errands.service import seed_errand_types
from backend.orders import placing
from backend.orders import service as orders
from backend.orders.models import Order
from backend.orders.recommend import recommend
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
    if db.session.scalar(select(ServicePoint.id).limit(1)) is None:
        _seed_service_points()
        db.session.commit()
    if (
        db.session.scalar(select(Order.id).limit(1)) is None
        and db.session.scalar(select(Errand.id).limit(1)) is None
    ):
        History(clock.now()).run()
        db.session.commit()
    return {
        "streets": db.session.query(Street).count(),
        "communities": db.session.query(Community).count(),
        "grids": db.session.query(Grid).count(),
        "organizations": db.session.query(Organization).count(),
        "users": db.session.query(User).count(),
        "categories": db.session.query(ServiceCategory).count(),
        "service_points": db.session.query(ServicePoint).count(),
        "orders": db.session.query(Order).count(),
        "errands": db.session.query(Errand).count(),
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


# Time: the services read backend.clock; the history is written with it set back to each event's moment.


@contextmanager
def _at(moment: datetime):
    """Run the services as if it were ``moment`` (backend.clock.now() and every default built on it)."""
    real = clock.datetime

    class _Then(datetime):
        @classmethod
        def now(cls, tz=None):
            return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

    clock.datetime = _Then
    try:
        yield
    finally:
        clock.datetime = real


def _by_openid(openid: str) -> User:
    return db.session.scalar(select(User).where(User.openid == openid))


HISTORY_DAYS = 30
POINT_SLOTS = [(time(9, 0), time(11, 30), 4), (time(14, 0), time(17, 0), 4)]
ERRAND_TYPES = ["subsistence_allowance", "medicine_purchase", "disability_certificate"]


def _seed_service_points() -> None:
    """One service point per community (its 党群服务中心), open on weekdays, set up before the history."""
    with _at(clock.now() - timedelta(days=HISTORY_DAYS + 5)):
        for ci, name in enumerate(COMMUNITIES, start=1):
            community = db.session.scalar(select(Community).where(Community.name == name))
            secretary = _by_openid(f"demo-secretary-{ci}")
            point = appointments.create_point(
                actor=secretary,
                name=f"{name}党群服务中心代办窗口",
                address=f"{STREET_NAME}{name}党群服务中心一楼",
                description="红色代办预约窗口：低保申请、代购药品、残疾证办理。",
                errand_types=ERRAND_TYPES,
                community_public_id=community.public_id,
                booking_days_ahead=14,
            )
            for weekday in range(1, 6):
                for start, end, capacity in POINT_SLOTS:
                    appointments.add_slot(
                        actor=secretary, point=point, weekday=weekday, start=start, end=end, capacity=capacity
                    )


def _answers(category: ServiceCategory, rng: random.Random) -> dict:
    answers = {}
    for q in category.questions:
        if not q.get("required"):
            continue
        choices = [c["key"] for c in q.get("choices", [])]
        kind = q["datatype"]
        if kind == "single_choice":
            answers[q["code"]] = rng.choice(choices)
        elif kind == "multi_choice":
            answers[q["code"]] = [rng.choice(choices)]
        elif kind == "number":
            answers[q["code"]] = "1"
        else:
            answers[q["code"]] = "需要上门协助"
    return answers


# Orders: what happens to each, and its texts.
ORDER_TEXTS = {
    "home_repair": ("厨房水龙头一直滴水，想请师傅看看", "已更换水龙头阀芯，试用正常"),
    "cleaning": ("老人行动不便，想请人打扫一下卫生", "已完成全屋清洁两小时"),
    "elderly_care": ("独居老人需要每周助浴一次", "已上门助浴，老人状态良好"),
    "companionship": ("独居老人希望有人上门聊聊天", "已上门陪伴两小时，约好下周再来"),
    "disability_support": ("需要有人陪同去医院复查", "已陪同就医，复查结果正常"),
    "child_care": ("孩子放学后无人看管，想请人辅导作业", "已安排志愿者辅导作业"),
    "legal_advice": ("租房押金被拖欠，想咨询怎么办", "已讲解维权途径并协助写好申请书"),
    "counselling": ("最近睡不好、心情低落，想找人聊聊", "已完成首次心理疏导，约定回访"),
    "mediation": ("楼上漏水到我家，和邻居协商不下来", "双方已达成赔偿协议"),
    "health_check": ("想给家里老人量血压、测血糖", "已上门体检，结果已告知家属"),
}
CATEGORIES = list(ORDER_TEXTS)
COMMENTS = {5: "非常感谢，服务很周到", 4: "挺好的", 3: "还可以", 2: "一般", 1: "迟到了很久，问题也没彻底解决"}
# (what happens, how many days ago it started); community 1 (阳光社区) keeps nothing in the secretary's
# "needs action" states, so its board shows only what the visitor adds. Four of every kind, one per community.
ORDER_PLAN = [
    *[("closed", d) for d in (29, 27, 26, 24, 23, 21, 20, 18, 17, 15, 14, 12, 11, 10, 9, 8, 7, 6, 5, 4)],
    ("closed_unhappy", 22),
    ("closed_unhappy", 13),
    ("closed_unhappy", 6),
    ("reopened", 6),
    *[("overdue", d) for d in (19, 16, 14)],
    ("resolved", 3),
    ("taken", 1),
    ("in_progress", 2),
    ("in_progress", 3),
    ("suspended", 2),
    ("extension", 4),
    ("resolved", 1),
    ("resolved", 2),
    ("submitted", 0),
    ("accepted", 0),
    ("dispatched", 0),
    ("returned", 1),
    ("rejected", 8),
    ("cancelled", 11),
]
NEEDS_SECRETARY = {"submitted", "accepted", "dispatched", "returned", "extension"}


class History:
    """A month of the street's life, made through the services at the moments it happened."""

    def __init__(self, now: datetime):
        self.now = now
        self.rng = random.Random(2026)
        self.start = now - timedelta(days=HISTORY_DAYS)
        self.residents = {ci: [] for ci in range(1, len(COMMUNITIES) + 1)}
        for ri in range(3, RESIDENTS + 1):  # residents 1 and 2 stay fresh for the walkthrough
            self.residents[(ri % (GRIDS_PER_COMMUNITY * len(COMMUNITIES))) // GRIDS_PER_COMMUNITY + 1].append(
                _by_openid(f"demo-resident-{ri}")
            )
        self.categories = {c.code: c for c in db.session.scalars(select(ServiceCategory))}
        self.orgs = {
            o.id: oi
            for oi, o in enumerate(db.session.scalars(select(Organization).order_by(Organization.id)), 1)
        }

    def run(self) -> None:
        for i, (plan, days_ago) in enumerate(ORDER_PLAN):
            community = (i % 4) + 1
            if plan in NEEDS_SECRETARY and community == 1:
                community = 2 + i % 3
            self.order(plan, community, days_ago, i)
        self.errands()

    # --- orders -------------------------------------------------------------------------------------

    def _day(self, days_ago: float, hour: float) -> datetime:
        """A moment ``days_ago`` local days back at ``hour`` o'clock local time, never in the future."""
        local = clock.to_local(self.now - timedelta(days=days_ago))
        moment = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hour)
        return min(moment, self.now - timedelta(minutes=5))

    def order(self, plan: str, ci: int, days_ago: int, i: int) -> None:
        rng = self.rng
        resident = rng.choice(self.residents[ci])
        code = CATEGORIES[i % len(CATEGORIES)]
        category = self.categories[code]
        ask, done = ORDER_TEXTS[code]
        secretary = _by_openid(f"demo-secretary-{ci}")
        t = self._day(days_ago, 8.5 + rng.random() * 3) if days_ago else self.now - timedelta(hours=3 - i % 3)
        step = timedelta(hours=1 + rng.random() * 2) if days_ago else timedelta(minutes=20)

        def then():
            nonlocal t
            t = min(t + step, self.now - timedelta(minutes=1))
            return _at(t)

        with _at(t):
            placed = placing.place_order(
                actor=resident,
                category_code=code,
                description=ask,
                address=f"{COMMUNITIES[ci - 1]}{rng.randint(1, 12)}号楼{rng.randint(1, 4)}单元"
                f"{rng.randint(1, 6)}0{rng.randint(1, 4)}",
                contact_name=resident.real_name,
                contact_phone=f"138{rng.randint(0, 99999999):08d}",
                answers=_answers(category, rng),
            )
            order = db.session.get(Order, placed.order.id)
        if plan == "submitted":
            return
        if plan == "cancelled":
            with then():
                orders.cancel(order=order, actor=resident, reason="家里人已经帮忙解决了")
            return
        if plan == "rejected":
            with then():
                orders.reject(
                    order=order, actor=secretary, reason="不属于本社区服务范围，已告知居民拨打物业电话"
                )
            return
        with then():
            orders.accept(order=order, actor=secretary)
        if plan == "accepted":
            return
        candidates = recommend(order)
        if not candidates:
            return
        org_id = candidates[0].organization.id
        with then():
            orders.dispatch(order=order, actor=secretary, organization_ids=[org_id])
        if plan == "dispatched":
            return
        oi = self.orgs[org_id]
        admin = _by_openid(f"demo-org-admin-{oi}")
        if plan == "returned":
            with then():
                orders.return_order(order=order, actor=admin, reason="本周人手不足，无法按时上门")
            return
        with then():
            orders.take(order=order, actor=admin)
        if plan in ("taken", "overdue"):
            return
        volunteer = db.session.scalar(
            select(Volunteer)
            .join(User, User.id == Volunteer.user_id)
            .where(User.openid == f"demo-volunteer-{oi}-{1 + i % 3}")
        )
        with then():
            orders.assign(order=order, actor=admin, volunteer_public_ids=[volunteer.public_id])
        worker = db.session.get(User, volunteer.user_id)
        with then():
            orders.start(order=order, actor=worker)
        if plan == "in_progress":
            return
        if plan == "suspended":
            with then():
                orders.suspend(order=order, actor=worker, reason="居民外出，约好回来后再上门")
            return
        if plan == "extension":
            with then():
                orders.request_extension(
                    order=order, actor=admin, amount=3, unit="working_days", reason="配件需要从厂家订货"
                )
            return
        step = timedelta(days=1, hours=rng.random() * 3) if days_ago > 1 else step
        with then():
            orders.resolve(order=order, actor=worker, note=done)
        if plan == "resolved":
            return
        step = timedelta(hours=3 + rng.random() * 10)
        if plan == "reopened":
            with then():
                orders.reopen(order=order, actor=resident, reason="过了两天又开始漏水了")
            with then():
                orders.take(order=order, actor=admin)
            with then():
                orders.start(order=order, actor=worker)
            with then():
                orders.resolve(order=order, actor=worker, note="重新更换了密封圈，观察两天不再漏水")
        level = 1 if plan == "closed_unhappy" else rng.choice((5, 5, 5, 4, 4, 3))
        tags = [] if level < 3 else rng.sample(["准时", "耐心", "专业", "热情"], 2)
        with then():
            orders.confirm(order=order, actor=resident, level=level, tags=tags, comment=COMMENTS[level])

    # --- errands and appointments -------------------------------------------------------------------

    def errands(self) -> None:
        plans = [
            ("completed", "subsistence_allowance", 1, 28),
            ("completed", "subsistence_allowance", 2, 26),
            ("completed", "disability_certificate", 3, 27),
            ("completed", "subsistence_allowance", 4, 25),
            ("refused", "subsistence_allowance", 2, 24),
            ("cancelled", "medicine_purchase", 3, 9),
            ("accepted", "subsistence_allowance", 1, 3),
            ("materials_pending", "subsistence_allowance", 2, 4),
            ("materials_collected", "medicine_purchase", 1, 1),
            ("lodged", "disability_certificate", 3, 6),
            ("under_review", "subsistence_allowance", 4, 12),
            ("returned_to_resident", "subsistence_allowance", 1, 20),
            ("appointed", "subsistence_allowance", 3, 1),
            ("appointed", "disability_certificate", 4, 0),
        ]
        for i, plan in enumerate(plans):
            self.errand(i, *plan)

    def _book(self, resident: User, ci: int, type_code: str, visit_by: datetime):
        """Book, four days ahead, the point's free occurrence nearest before ``visit_by`` (as the resident,
        then); None when there is none (the resident came without an appointment)."""
        point = db.session.scalar(
            select(ServicePoint).where(ServicePoint.name == f"{COMMUNITIES[ci - 1]}党群服务中心代办窗口")
        )
        booked_at = visit_by - timedelta(days=4)
        with _at(booked_at):
            found = appointments.availability(point=point, start=None, end=None)["items"]
            fitting = [
                o
                for o in found
                if o["remaining"] > 0 and booked_at + timedelta(hours=20) < o["starts_at"] < visit_by
            ]
            if not fitting:
                return None, None
            chosen = fitting[-1]
            booking = appointments.book(
                actor=resident,
                slot_public_id=chosen["slot"].public_id,
                day=chosen["date"],
                errand_type=type_code,
                note="想请代办员帮忙办理",
            )
        return booking, chosen["starts_at"]

    def errand(self, i: int, plan: str, type_code: str, ci: int, days_ago: int) -> None:
        rng = self.rng
        resident = self.residents[ci][-(1 + i % 5)]
        secretary = _by_openid(f"demo-secretary-{ci}")
        agent = _by_openid(f"demo-agent-{ci}")
        t = self._day(days_ago, 9 + rng.random() * 2)
        booking, visit = (None, None)
        if days_ago >= 2:
            # 网上预约: booked ahead, the errand opened at the window when the resident came.
            booking, visit = self._book(resident, ci, type_code, t)
            if visit is not None:
                t = visit + timedelta(minutes=30)
        moments = iter(t + timedelta(hours=h) for h in self._spacing(days_ago))

        def then():
            return _at(min(next(moments), self.now - timedelta(minutes=1)))

        with _at(t):
            if type_code == "medicine_purchase":
                # The drug list is health information: stored only under the resident's entrustment and
                # health consent (单独同意), given first.
                for kind in ("entrustment", "health"):
                    privacy.grant_consent(
                        user_id=resident.id, kind=kind, text_version=privacy.CURRENT_CONSENT_VERSION
                    )
            errand = errands.create_errand(
                actor=resident,
                type_code=type_code,
                description="行动不便，请代办员帮忙办理",
                appointment_id=booking.public_id if booking else None,
                items=[{"drug_name": "硝苯地平缓释片", "quantity": "2盒"}]
                if type_code == "medicine_purchase"
                else None,
            )
        if plan == "appointed":
            return
        if plan == "cancelled":
            with then():
                errands.cancel(errand=errand, actor=resident, reason="子女回来了，自己去办")
            return
        with then():
            errands.accept(
                errand=errand,
                actor=secretary,
                agent_public_id=agent.public_id,
                eligibility_note="户籍在本社区，资格初审通过",
                materials=[],
            )
        if plan == "accepted":
            return
        definition = errand.definition
        required = [m["code"] for m in definition["materials"] if m["required"]]
        if plan == "materials_pending":
            with then():
                errands.request_materials(
                    errand=errand, actor=agent, missing=required[-1:], note="银行流水需近六个月"
                )
            return
        handover = {
            "number": f"JJ-{ci}{i:03d}",
            "handed_over_by": errand.applicant_name,
            "received_by": agent.real_name,
            "signed": True,
        }
        money = {"cash_received_fen": 10000} if definition.get("money") else {}
        with then():
            errands.collect(errand=errand, actor=agent, materials=required, handover=handover, **money)
        if plan == "materials_collected":
            return
        with then():
            errands.lodge(
                errand=errand, actor=agent, office=definition["office"], receipt_number=f"HZ2026{ci}{i:04d}"
            )
        if plan == "lodged":
            return
        with then():
            errands.review(errand=errand, actor=agent, note="已入户调查，公示中")
        if plan == "under_review":
            return
        refused = plan == "refused"
        result = {}
        if type_code == "subsistence_allowance" and not refused:
            result = {"amount_fen": rng.choice((58000, 72000, 86000))}
        if type_code == "disability_certificate" and not refused:
            for kind in ("entrustment", "id_number"):
                privacy.grant_consent(
                    user_id=resident.id, kind=kind, text_version=privacy.CURRENT_CONSENT_VERSION
                )
            result = {"certificate_number": f"11010519490101{1000 + i:04d}22", "valid_until": "2036-12-31"}
        with then():
            errands.record_result(
                errand=errand,
                actor=agent,
                outcome="refused" if refused else "approved",
                note="家庭人均收入超过当地低保标准" if refused else "审核通过",
                **result,
            )
        with then():
            errands.return_to_resident(errand=errand, actor=agent, note="结果通知书和原件已当面交还")
        if plan == "returned_to_resident":
            return
        with then():
            errands.complete(errand=errand, actor=resident)
        with then():
            errands.rate(errand=errand, actor=resident, level=4 if refused else 5, comment="代办员很耐心")

    def _spacing(self, days_ago: int) -> list[float]:
        """Hours after the errand opened at which its steps happen: spread over its age, in order."""
        span = max(days_ago * 24 - 2, 2)
        marks = sorted(self.rng.uniform(0.5, span) for _ in range(9))
        return marks
