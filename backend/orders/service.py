"""The three-order flow (三单): residents place orders, secretaries accept and dispatch, organizations take
and carry them out, residents confirm and rate. Every action goes through the state table in orders.states,
writes a timeline event, moves the SLA clocks and records its notifications in the same transaction.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm.exc import StaleDataError

from backend import clock as wall
from backend.auth.principals import Person
from backend.auth.roles import Role, ScopeType
from backend.auth.service import members_with_role
from backend.catalog.models import ServiceCategory
from backend.community.service import places
from backend.db import db, fetch_all, flush_unless_taken
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.notify.service import notify_many
from backend.orders import recommend, states
from backend.orders.models import (
    URGENCY_RANK,
    Order,
    OrderAssignment,
    OrderEvent,
    OrderOffer,
    Rating,
    extension_asked,
)
from backend.organizations.models import Organization, Volunteer
from backend.organizations.service import on_roster
from backend.outbox import service as outbox
from backend.sla import clocks, policies, subjects
from backend.sla.calendar import Unit
from backend.sla.rules import SERVICE_KINDS, Limit
from backend.sla.service import load_calendar
from backend.storage import service as storage
from backend.supervision import service as supervision

SUBJECT = "order"
ACCEPT_CLOCK, COMPLETE_CLOCK = "accept", "complete"
# Timers the system acts on for urgent orders: dispatch one nobody dispatched, re-dispatch one nobody took.
DISPATCH_TIMER, TAKE_TIMER = "dispatch", "take"
URGENT_DISPATCH_AFTER = Limit("0.17", Unit.HOURS)  # about ten minutes
URGENT_TAKE_AFTER = Limit("0.17", Unit.HOURS)
OPEN_STATES = frozenset(states.STATES) - states.FINAL_STATES - {"resolved"}
AUTO_CLOSE_JOB = "orders.auto_close"
BAD_RATING = 2  # 基本满意 and 不满意 open a 督办 and cost the organization dispatch weight
BAD_RATING_PENALTY, MIN_DISPATCH_WEIGHT = 0.1, 0.5


class Facts:
    """What the rules of orders.states read of an order (states.Facts), each read when a rule first asks;
    ``known``: facts the caller has already read (the rating a page shows)."""

    def __init__(self, order: Order, **known):
        self._order = order
        self.now = wall.now()
        self.__dict__.update(known)

    @property
    def kind_label(self) -> str:
        return self._order.service_kind_label

    @cached_property
    def rated(self) -> bool:
        return rating_of(self._order) is not None

    @property
    def resolved_at(self) -> datetime | None:
        return self._order.resolved_at

    @cached_property
    def _in_force(self):
        return _policy(self._order)

    @property
    def return_within(self) -> Limit | None:
        return self._in_force.return_within

    @property
    def return_deadline(self) -> datetime:
        window = self.return_within
        return load_calendar().add(self._order.dispatched_at, window.calendar_amount(), window.unit).at

    @property
    def extension_limit(self) -> Limit | None:
        return self._in_force.extension

    @property
    def extension_pending(self) -> bool:
        return self._order.extension_request is not None

    @property
    def extension_granted(self) -> bool:
        return self._order.extension_granted

    @cached_property
    def _completion(self):
        return _clock(self._order, COMPLETE_CLOCK)

    @property
    def completion_past_due(self) -> bool:
        return self._completion is not None and clocks.past_due(self._completion)

    @property
    def approval_refused(self) -> str | None:
        if self._completion is None:
            return "办结时限尚未开始，无需延期"
        refused = clocks.extension_refusal(
            clock=self._completion,
            limit=extension_asked(self._order.extension_request),
            allowed=self.extension_limit,
        )
        return None if refused is None else refused.message


class IllegalAction(Conflict):
    """409 for an action the order's state, its data or the caller's role does not allow, saying what
    would be (``facts``: the order's, if already read)."""

    def __init__(
        self,
        order: Order,
        action: str,
        actors: frozenset[str],
        message: str | None = None,
        *,
        code: str = "illegal_action",
        facts: Facts | None = None,
    ):
        allowed = states.allowed_actions(order.state, actors, facts or Facts(order))
        label = states.ACTION_LABELS.get(action, action)
        super().__init__(
            message or f"工单当前为“{order.state_label}”，不能{label}",
            code=code,
            details={"state": order.state, "state_label": order.state_label, "allowed_actions": allowed},
        )


def offered_actions(order: Order, caller: "Caller", **known) -> list[str]:
    """The actions offered to the caller now: those the state table and the order's data allow, as taking
    them checks (auto_close is Sandan's alone)."""
    allowed = states.allowed_actions(order.state, caller.actors, Facts(order, **known))
    return [a for a in allowed if a != "auto_close"]


# Who the caller is to this order


@dataclass(frozen=True)
class Caller:
    user: Person
    actors: frozenset[str]
    # The organization the caller acts for, when acting as an organization admin or volunteer.
    organization_id: int | None = None


def scope_ids(person: Person, role: str, scope_type: str) -> set[int]:
    """The scopes of one type in which the person holds a role."""
    return {m.scope_id for m in person.memberships if m.role == role and m.scope_type == scope_type}


def _street_of(community_id: int) -> int:
    return places().communities[community_id].parent_id


def _offered_orgs(order: Order, *, active_only: bool) -> set[int]:
    query = select(OrderOffer.organization_id).where(OrderOffer.order_id == order.id)
    if active_only:
        query = query.where(OrderOffer.active.is_(True))
    return set(db.session.scalars(query))


def _volunteer_entries(user: Person) -> dict[int, int]:
    """{volunteer id: organization id} for the user's roster entries."""
    return dict(
        db.session.execute(
            select(Volunteer.id, Volunteer.organization_id).where(Volunteer.user_id == user.id)
        ).all()
    )


def caller_for(order: Order, user: Person) -> Caller:
    """Work out in which capacities a user stands to an order (possibly none)."""
    actors: set[str] = set()
    organization_id = None
    if order.resident_id == user.id:
        actors.add(states.OWNER)
    if order.community_id in scope_ids(user, Role.SECRETARY, ScopeType.COMMUNITY):
        actors.add(states.SECRETARY)
    streets = scope_ids(user, Role.STREET_ADMIN, ScopeType.STREET)
    if streets and _street_of(order.community_id) in streets:
        actors.add(states.STREET_ADMIN)
    admin_of = scope_ids(user, Role.ORG_ADMIN, ScopeType.ORGANIZATION)
    if admin_of:
        if order.organization_id in admin_of:
            actors.add(states.ORG_ADMIN)
            organization_id = order.organization_id
        elif order.state == "dispatched":
            offered = sorted(admin_of & _offered_orgs(order, active_only=True))
            if offered:
                actors.add(states.ORG_ADMIN)
                organization_id = offered[0]
    # On an organization's roster: its volunteer role held there (one who left keeps their entry, not it).
    serving = scope_ids(user, Role.VOLUNTEER, ScopeType.ORGANIZATION)
    entries = {}
    if serving and order.organization_id in serving:
        entries = {v: o for v, o in _volunteer_entries(user).items() if o in serving}
    if entries and order.organization_id in entries.values():
        assigned = set(
            db.session.scalars(
                select(OrderAssignment.volunteer_id).where(OrderAssignment.order_id == order.id)
            )
        )
        if assigned & set(entries):
            actors.add(states.VOLUNTEER)
            organization_id = organization_id or order.organization_id
    return Caller(user=user, actors=frozenset(actors), organization_id=organization_id)


def can_view(order: Order, user: Person, *, to_act: bool = False) -> bool:
    """Residents their own; overseers their community or street; organizations what is offered to them now
    or what they hold (as their board lists it: a pool lost or an order returned is no longer theirs);
    volunteers what they are assigned; grid workers their grid. ``to_act``: also an organization it was
    ever offered to, so that acting on it late is told why (409), not that it does not exist."""
    if caller_for(order, user).actors:
        return True
    if order.grid_id in scope_ids(user, Role.GRID_WORKER, ScopeType.GRID):
        return True
    admin_of = scope_ids(user, Role.ORG_ADMIN, ScopeType.ORGANIZATION) if to_act else set()
    return bool(admin_of and admin_of & _offered_orgs(order, active_only=False))


def contact_visible(order: Order, user: Person, caller: Caller | None = None) -> bool:
    """Phone and exact address: the resident, the community, and the organization only while it holds the
    order (after taking it, until it closes)."""
    caller = caller or caller_for(order, user)
    if caller.actors & {states.OWNER, states.SECRETARY, states.STREET_ADMIN}:
        return True
    if order.grid_id in scope_ids(user, Role.GRID_WORKER, ScopeType.GRID):
        return True
    holds = order.state in states.HELD_STATES and caller.organization_id == order.organization_id
    return holds and bool(caller.actors & states.DOERS)


def get_order(public_id: str, *, viewer: Person, to_act: bool = False) -> Order:
    """Return an order the viewer may see (or act on: ``can_view``); 404 otherwise (whether it exists is
    nobody else's business)."""
    order = db.session.scalar(select(Order).where(Order.public_id == public_id))
    if order is None or not can_view(order, viewer, to_act=to_act):
        raise NotFound("工单不存在")
    return order


class OrderFacts(NamedTuple):
    """An order's ids and state: what deciding who stands where to it needs, and nothing personal."""

    id: int
    public_id: str
    resident_id: int
    community_id: int
    grid_id: int
    category_id: int
    organization_id: int | None
    state: str


_FACTS = select(*(getattr(Order, name) for name in OrderFacts._fields)).where(
    Order.public_id == bindparam("public_id")
)


def get_order_facts(public_id: str, *, viewer: Person) -> OrderFacts:
    """get_order for a read that needs only the order's ids and state (its recommendations): read outside
    the session's transaction, without decrypting the contact, with no BEGIN and ROLLBACK around it."""
    rows = fetch_all(_FACTS, {"public_id": public_id})
    facts = OrderFacts(*rows[0]) if rows else None
    if facts is None or not can_view(facts, viewer):
        raise NotFound("工单不存在")
    return facts


def _lock(order: Order) -> Order:
    """Re-read the order under a row lock (PostgreSQL) so two actions on it run one after the other.

    FOR NO KEY UPDATE, the lock an UPDATE of other columns than the key takes: it does not hold up another
    transaction checking a foreign key that names this order (a likely duplicate placed after it)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(Order.id).where(Order.id == order.id).with_for_update(key_share=True))
    db.session.refresh(order)
    return order


# Timeline


def _event(
    order: Order,
    *,
    action: str,
    actor: Person | None,
    actor_role: str,
    from_state: str | None,
    note: str = "",
    data: dict | None = None,
) -> OrderEvent:
    event = OrderEvent(
        order_id=order.id,
        at=wall.now(),
        actor_id=actor.id if actor else None,
        actor_role=actor_role,
        action=action,
        from_state=from_state,
        to_state=order.state,
        note=note,
        data=data or {},
    )
    db.session.add(event)
    return event


def _log(order: Order, caller: "Caller", action: str, before: str | None, note: str = "", data=None):
    """The event of an action the caller took, in the capacity that allowed it."""
    return _event(
        order,
        action=action,
        actor=caller.user,
        actor_role=_actor_role(caller, action),
        from_state=before,
        note=note,
        data=data,
    )


def _system_event(order: Order, action: str, note: str = "", data=None):
    """An event Sandan caused by itself (a card, an automatic dispatch, a 督办), in the current state."""
    return _event(
        order,
        action=action,
        actor=None,
        actor_role=states.SYSTEM,
        from_state=order.state,
        note=note,
        data=data,
    )


def timeline(order: Order) -> list[OrderEvent]:
    """The order's events, oldest first."""
    return list(
        db.session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id))
    )


def _role_word(caller: Caller, action: str) -> str:
    """The capacity an action was taken in, for the timeline."""
    allowed = states.transition_actors(action) & caller.actors
    for actor in (states.OWNER, states.SECRETARY, states.STREET_ADMIN, states.ORG_ADMIN, states.VOLUNTEER):
        if actor in allowed:
            return actor
    return sorted(caller.actors)[0] if caller.actors else "unknown"


# Notifications


def _describe(order: Order) -> dict[str, str]:
    return {"subject": order.category.name, "number": order.number, "state": order.state_label}


def _page(order: Order) -> str:
    return f"pages/orders/detail?id={order.public_id}"


def _tell(order: Order, event: str, user_ids, *, linked: bool = True, **fields) -> None:
    """Notify the users of a step; ``linked`` False for those who may no longer open the order (its page
    would tell them it does not exist)."""
    ids = [i for i in user_ids if i is not None]
    if ids:
        notify_many(
            user_ids=ids,
            event=event,
            fields={**_describe(order), **fields},
            page=_page(order) if linked else None,
            subject_type=SUBJECT,
            subject_id=order.id,
        )


def _tell_withdrawn(order: Order, organization_ids, event: str, *, state: str, note: str) -> None:
    """Tell the organizations an order leaves (dispatched elsewhere, taken by another of its pool, called
    off) that it did; their messages lead nowhere, as they may no longer open it."""
    _tell(order, event, _org_admins(organization_ids), linked=False, state=state, note=note)


def _org_admins(organization_ids) -> list[int]:
    people: list[int] = []
    for organization_id in sorted(organization_ids):
        people += members_with_role(
            role=Role.ORG_ADMIN, scope_type=ScopeType.ORGANIZATION, scope_id=organization_id
        )
    return people


def _secretaries(order: Order) -> list[int]:
    return members_with_role(role=Role.SECRETARY, scope_type=ScopeType.COMMUNITY, scope_id=order.community_id)


# Clocks


def _policy(order: Order):
    # The order's kind, not its category's: the secretary may correct it on accepting (受理).
    return policies.policy_for(service_kind=order.service_kind, category_code=order.category.code)


def _start_clock(order: Order, name: str, limit: Limit, *, escalates: bool = True) -> None:
    clock = clocks.start(
        subject_type=SUBJECT,
        subject_id=order.id,
        name=name,
        limit=limit,
        community_id=order.community_id,
        organization_id=order.organization_id,
        escalates=escalates,
    )
    if escalates:
        clocks.show_deadline(order, clock)


def _clock(order: Order, name: str):
    return clocks.current(subject_type=SUBJECT, subject_id=order.id, name=name)


def _stop_clock(order: Order, name: str, reason: str = "met") -> None:
    found = _clock(order, name)
    if found is not None:
        clocks.stop(clock=found, reason=reason)


def _refresh_due(order: Order) -> None:
    """Show the deadline of the clock running now (completion before acceptance)."""
    for name in (COMPLETE_CLOCK, ACCEPT_CLOCK):
        found = _clock(order, name)
        if found is not None:
            clocks.show_deadline(order, found)
            return
    clocks.show_deadline(order, None)


# Placing (orders.placing writes the order; these are what it needs of the rest)


def start_urgent_clocks(order: Order) -> Order:
    """An emergency counts from the call, around the clock, and is dispatched by Sandan if nobody does;
    return the order, showing its deadline."""
    _start_clock(order, ACCEPT_CLOCK, _policy(order).accept)
    _start_clock(order, DISPATCH_TIMER, URGENT_DISPATCH_AFTER, escalates=False)
    db.session.flush()
    return order


def announce_placed(*, order_id: int) -> None:
    """Ask the community's secretaries to accept a new order (the outbox job placing records), if it still
    waits for them: the job may run late (the relay behind, Redis down, a worker starting), when the order
    has been accepted, dispatched or cancelled, and asking a secretary to accept it would mislead them."""
    order = db.session.get(Order, order_id)
    if order is not None and order.state == "submitted":
        _tell(order, "order_accepted", _secretaries(order), state="新工单", note=order.category.name)


# Acting on orders


def _begin(order: Order, user: Person | None, action: str) -> tuple[Caller, str]:
    """Lock the order and check the action is allowed to this caller now, by the state table and by the
    order's data; return (caller, state before)."""
    _lock(order)
    caller = (
        caller_for(order, user) if user is not None else Caller(user=None, actors=frozenset({states.SYSTEM}))
    )
    if not states.can(order.state, action, caller.actors):
        if not caller.actors and user is not None and not can_view(order, user, to_act=True):
            raise NotFound("工单不存在")
        raise IllegalAction(order, action, caller.actors)
    refused = _refused(order, action, caller.actors, Facts(order))
    if refused is not None:
        raise refused
    return caller, order.state


def _refused(order: Order, action: str, actors: frozenset[str], facts: Facts) -> IllegalAction | None:
    """The 409 for an action the order's data refuses (states.refusal), or None."""
    message = states.refusal(action, facts)
    if message is None:
        return None
    code = states.REFUSAL_CODES.get(action, "illegal_action")
    return IllegalAction(order, action, actors, message, code=code, facts=facts)


# Where an extension request may wait for the secretary; an order leaving them (resolved, cancelled) has no
# work left to extend, and a request left behind would keep it on the board with nothing to decide.
EXTENSION_PENDING_STATES = frozenset({"taken", "in_progress", "suspended"})


def _finish(order: Order, to_state: str | None = None) -> None:
    if to_state:
        order.state = to_state
        if to_state not in EXTENSION_PENDING_STATES:
            order.extension_request = None
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict("工单刚被他人处理，请刷新后再试", code="order_changed") from None


def _actor_role(caller: Caller, action: str) -> str:
    return states.SYSTEM if caller.user is None else _role_word(caller, action)


def accept(*, order: Order, actor: Person, service_kind: str | None = None, note: str = "") -> Order:
    """Accept a new order into the community's care (受理), optionally correcting its service kind."""
    caller, before = _begin(order, actor, "accept")
    _accept(order, service_kind)
    _finish(order, "accepted")
    _log(order, caller, "accept", before, note=note)
    _tell(order, "order_accepted", [order.resident_id])
    return order


def _accept(order: Order, service_kind: str | None) -> None:
    if service_kind and service_kind != order.service_kind:
        if service_kind not in SERVICE_KINDS:
            raise ValidationFailed(details={"service_kind": ["服务类型无效"]})
        order.service_kind = service_kind
        order.urgency_rank = URGENCY_RANK[service_kind]
        # What runs was started for the old kind (an urgent order's clocks start when it is placed).
        _stop_clock(order, ACCEPT_CLOCK, reason="reclassified")
        _stop_clock(order, DISPATCH_TIMER, reason="reclassified")
        if service_kind == "urgent":
            _start_clock(order, DISPATCH_TIMER, URGENT_DISPATCH_AFTER, escalates=False)
    order.accepted_at = order.accepted_at or wall.now()
    if _clock(order, ACCEPT_CLOCK) is None:
        _start_clock(order, ACCEPT_CLOCK, _policy(order).accept)


def _end(order: Order, state: str) -> None:
    """Finish an order that will not be carried out: no offers stand, no clock runs."""
    order.closed_at = wall.now()
    db.session.execute(update(OrderOffer).where(OrderOffer.order_id == order.id).values(active=False))
    _finish(order, state)
    clocks.stop_all(subject_type=SUBJECT, subject_id=order.id, reason=state)
    clocks.show_deadline(order, None)


def reject(*, order: Order, actor: Person, reason: str) -> Order:
    """Decline a new order with a reason the resident will read (驳回)."""
    caller, before = _begin(order, actor, "reject")
    _end(order, "rejected")
    _log(order, caller, "reject", before, note=reason)
    _tell(order, "order_accepted", [order.resident_id], state="已驳回", note=reason)
    return order


def _eligible(order: Order, organization_ids: list[int]) -> list[Organization]:
    orgs = list(db.session.scalars(select(Organization).where(Organization.id.in_(organization_ids))))
    found = {o.id for o in orgs}
    if missing := [i for i in organization_ids if i not in found]:
        raise ValidationFailed(details={"organization_ids": [f"社会组织不存在：{len(missing)} 个"]})
    street_id = _street_of(order.community_id)
    if any(o.street_id != street_id for o in orgs):
        raise ValidationFailed(details={"organization_ids": ["只能派给本街道的社会组织"]})
    return orgs


def organizations_by_public_id(public_ids: list[str]) -> list[int]:
    ids = dict(
        db.session.execute(
            select(Organization.public_id, Organization.id).where(Organization.public_id.in_(public_ids))
        ).all()
    )
    if missing := [p for p in public_ids if p not in ids]:
        raise ValidationFailed(details={"organization_ids": [f"社会组织不存在：{', '.join(missing)}"]})
    return [ids[p] for p in public_ids]


def dispatch(
    *,
    order: Order,
    actor: Person | None,
    organization_ids: list[int],
    pool: bool = False,
    note: str = "",
    action: str = "dispatch",
) -> Order:
    """Dispatch (派单) to one organization, or to a pool where the first to take it wins; ``redispatch``
    sends a dispatched order elsewhere. ``actor`` None is Sandan dispatching by itself."""
    caller, before = _begin(order, actor, action)
    if not organization_ids:
        raise ValidationFailed(details={"organization_ids": ["请选择承接的社会组织"]})
    if not pool and len(organization_ids) != 1:
        raise ValidationFailed(details={"organization_ids": ["直接派单只能选择一个社会组织；多个请用抢单池"]})
    orgs = _eligible(order, organization_ids)
    if before == "submitted":
        _accept(order, None)
    # Organizations it stood offered to that the new dispatch leaves out: it leaves their boards.
    withdrawn = _offered_orgs(order, active_only=True) - {o.id for o in orgs}
    db.session.execute(update(OrderOffer).where(OrderOffer.order_id == order.id).values(active=False))
    for org in orgs:
        offer = db.session.get(OrderOffer, (order.id, org.id))
        if offer is None:
            db.session.add(OrderOffer(order_id=order.id, organization_id=org.id, offered_at=wall.now()))
        else:
            offer.active, offer.offered_at = True, wall.now()
    order.pool = pool
    order.organization_id = None if pool else orgs[0].id
    order.dispatched_at = wall.now()
    order.taken_at = None  # to be taken again: 解决率 counts an order for the organization that took it
    order.dispatch_count += 1
    _finish(order, "dispatched")
    _accept_clock_answers_to(order, order.organization_id)
    _stop_clock(order, DISPATCH_TIMER)
    _stop_clock(order, TAKE_TIMER, reason="redispatched")
    if order.service_kind == "urgent":
        _start_clock(order, TAKE_TIMER, URGENT_TAKE_AFTER, escalates=False)
    data = {"organizations": [o.public_id for o in orgs], "pool": pool}
    _log(order, caller, action, before, note=note, data=data)
    _tell(order, "order_dispatched", _org_admins(o.id for o in orgs), note=order.description[:20])
    _tell_withdrawn(order, withdrawn, "order_dispatched", state="已改派", note="已改派给其他组织")
    if before == "submitted":
        _tell(order, "order_accepted", [order.resident_id])
    return order


def _acting_org(caller: Caller, organization_id: int | None) -> int:
    if organization_id is not None:
        return organization_id
    if caller.organization_id is None:
        raise Forbidden("不是该工单的承接组织")
    return caller.organization_id


def take(*, order: Order, actor: Person, organization_id: int | None = None) -> Order:
    """Take a dispatched order (接单); in a pool the first organization wins and the others get 409."""
    caller, before = _begin(order, actor, "take")
    org_id = _acting_org(caller, organization_id)
    active = _offered_orgs(order, active_only=True)
    if org_id not in active or org_id not in scope_ids(actor, Role.ORG_ADMIN, ScopeType.ORGANIZATION):
        raise IllegalAction(order, "take", caller.actors, "该工单未派给你的组织，或已被其他组织接单")
    order.organization_id = org_id
    order.taken_at = wall.now()
    db.session.execute(update(OrderOffer).where(OrderOffer.order_id == order.id).values(active=False))
    _finish(order, "taken")
    # The response counts for whoever took it, pool or not.
    accept_clock = _accept_clock_answers_to(order, org_id)
    if accept_clock is not None:
        clocks.stop(clock=accept_clock)
    _stop_clock(order, TAKE_TIMER)
    if _clock(order, COMPLETE_CLOCK) is None:
        _start_clock(order, COMPLETE_CLOCK, _policy(order).complete)
    org = db.session.get(Organization, org_id)
    _log(order, caller, "take", before, data={"organization": org.public_id})
    _tell(order, "order_taken", [order.resident_id], note=org.name)
    # The pool's other organizations lose it from their boards, and their 待签收 message with it.
    _tell_withdrawn(order, active - {org_id}, "order_dispatched", state="已被接单", note="已由其他组织接单")
    return order


def _accept_clock_answers_to(order: Order, organization_id: int | None, *, unless_missed: bool = False):
    """Name the organization the acceptance clock answers for (its cards go to that organization's admins,
    or with none to the secretary), ``unless_missed``: not once its deadline has passed; return the clock,
    if it runs."""
    accept_clock = _clock(order, ACCEPT_CLOCK)
    if accept_clock is not None and not (unless_missed and accept_clock.overdue_at is not None):
        clocks.assign_organization(clock=accept_clock, organization_id=organization_id)
    return accept_clock


def return_order(*, order: Order, actor: Person, reason: str) -> Order:
    """Return a dispatched order to the community (退单), with a reason, within the policy's window."""
    caller, before = _begin(order, actor, "return")
    org_id = _acting_org(caller, None)
    offer = db.session.get(OrderOffer, (order.id, org_id))
    if offer is not None:
        offer.active = False
    still_offered = _offered_orgs(order, active_only=True) - {org_id}
    order.return_count += 1
    if order.pool and still_offered:
        # One organization of a pool steps back; the others can still take it.
        _finish(order)
        to_state = "dispatched"
    else:
        order.organization_id = None
        _finish(order, "returned")
        to_state = "returned"
        # Back with the secretary: its cards (and any 督办) are theirs now, not the returning organization's;
        # but a deadline the organization already let pass stays its miss (响应率), not erased by returning.
        _accept_clock_answers_to(order, None, unless_missed=True)
    org = db.session.get(Organization, org_id)
    _log(order, caller, "return", before, note=reason, data={"organization": org.public_id, "to": to_state})
    if order.return_count >= 2:
        _supervise(order, "repeated_return", f"{order.category.name}（{order.number}）多次被退单")
    _tell(order, "order_dispatched", _secretaries(order), state="已退单", note=reason)
    return order


def _supervise(order: Order, reason: str, title: str) -> None:
    """Open a 督办 on the order unless one for the same reason is open, and tell those who must act on it:
    as an overdue one is told, the organization it names, the community's secretaries and the street."""
    try:
        _open_supervision(order, reason, title)
    except Conflict:
        return


def _open_supervision(order: Order, reason: str, title: str, *, caller: Caller | None = None, note: str = ""):
    """Open the record (Conflict while one for the reason is open), flag the order, write its timeline and
    tell those answerable for it (less the person who raised it); return the record."""
    record = supervision.open_record(
        subject_type=SUBJECT,
        subject_id=order.id,
        community_id=order.community_id,
        organization_id=order.organization_id,
        reason=reason,
        title=title,
        note=note,
        raised_by_id=caller.user.id if caller is not None else None,
    )
    order.is_supervised = True
    if caller is None:
        _system_event(order, "supervise", data={"reason": reason})
    else:
        # The timeline is the resident's and the organization's to read: it says the street raised a 督办,
        # never why (the admin's words may judge either); the reason stays on the record, for staff.
        _event(
            order,
            action="supervise",
            actor=caller.user,
            actor_role=states.STREET_ADMIN,
            from_state=order.state,
            data={"reason": reason},
        )
    people = clocks.answerable(
        community_id=record.community_id, organization_id=record.organization_id, escalate=True
    )
    raiser = caller.user.id if caller is not None else None
    # Those answerable are staff (the organization, the secretaries, the street): they may read why.
    told = f"{record.reason_label}：{note}" if note else record.reason_label
    _tell(order, "supervision_raised", [p for p in people if p != raiser], note=told)
    return record


def supervise(*, order: Order, actor: Person, reason: str):
    """Raise a 街道督办 on the order by hand (its street's admin), with the reason; refused (409) while one
    raised by hand is open on it."""
    _lock(order)
    caller = caller_for(order, actor)
    if states.STREET_ADMIN not in caller.actors:
        raise Forbidden("只有本街道的管理员可以督办", code="supervise_forbidden")
    return _open_supervision(
        order, "manual", f"{order.category.name}（{order.number}）", caller=caller, note=reason
    )


def assign(*, order: Order, actor: Person, volunteer_public_ids: list[str]) -> Order:
    """Assign volunteers of the holding organization to carry the order out."""
    caller, before = _begin(order, actor, "assign")
    query = select(Volunteer).where(Volunteer.public_id.in_(volunteer_public_ids)).order_by(Volunteer.id)
    if db.engine.dialect.name == "postgresql":
        # Held against the volunteer's removal at the same moment (organizations.remove_volunteer): one
        # waits for the other, and the removal sees this assignment, or this assignment sees them gone.
        query = query.with_for_update()
    volunteers = list(db.session.scalars(query))
    if len(volunteers) != len(set(volunteer_public_ids)) or any(
        v.organization_id != order.organization_id for v in volunteers
    ):
        raise ValidationFailed(details={"volunteer_ids": ["只能指派本组织的志愿者"]})
    rostered = set(
        db.session.scalars(
            select(Volunteer.id).where(Volunteer.id.in_([v.id for v in volunteers]), on_roster())
        )
    )
    if any(v.id not in rostered for v in volunteers):
        raise ValidationFailed(details={"volunteer_ids": ["只能指派本组织在册的志愿者"]})
    for volunteer in volunteers:
        if db.session.get(OrderAssignment, (order.id, volunteer.id)) is None:
            db.session.add(
                OrderAssignment(
                    order_id=order.id,
                    volunteer_id=volunteer.id,
                    assigned_by_id=actor.id,
                    assigned_at=wall.now(),
                )
            )
    _finish(order)
    _log(order, caller, "assign", before, data={"volunteers": [v.public_id for v in volunteers]})
    _tell(order, "order_taken", [v.user_id for v in volunteers], state="已指派", note=order.description[:20])
    return order


def start(*, order: Order, actor: Person, note: str = "") -> Order:
    """Start the work (办理中); the note goes on the timeline."""
    return _simple(order, actor, "start", "in_progress", note)


def _simple(order: Order, actor: Person, action: str, to_state: str, note: str = "") -> Order:
    caller, before = _begin(order, actor, action)
    _finish(order, to_state)
    _log(order, caller, action, before, note=note)
    return order


def suspend(*, order: Order, actor: Person, reason: str) -> Order:
    """Wait on the resident (待补充): the completion clock pauses."""
    _simple(order, actor, "suspend", "suspended", reason)
    found = _clock(order, COMPLETE_CLOCK)
    if found is not None:
        clocks.pause(clock=found)
    _refresh_due(order)
    _tell(order, "order_taken", [order.resident_id], state="待补充", note=reason)
    return order


def resume(*, order: Order, actor: Person, note: str = "") -> Order:
    """Carry on after the wait: the completion clock runs again, its deadline moved by the pause; the note
    goes on the timeline."""
    _simple(order, actor, "resume", "in_progress", note)
    found = _clock(order, COMPLETE_CLOCK)
    if found is not None:
        clocks.resume(clock=found)
    _refresh_due(order)
    return order


def request_extension(*, order: Order, actor: Person, amount: float, unit: str, reason: str) -> Order:
    """Ask the secretary for the order's one extension."""
    caller, before = _begin(order, actor, "request_extension")
    allowed = _policy(order).extension
    try:
        wanted = Limit(amount, Unit(unit))
    except ValueError as exc:  # Limit's own words are English, for programmers
        wrong = "延期时长须大于 0" if not amount > 0 else "工作日须为整数"
        raise ValidationFailed(details={"amount": [wrong]}) from exc
    if wanted.unit != allowed.unit or wanted.amount > allowed.amount:
        raise ValidationFailed(details={"amount": [f"延期不能超过{allowed.label()}"]})
    order.extension_request = {
        "amount": str(wanted.amount),
        "unit": str(wanted.unit),
        "reason": reason,
        "requested_at": wall.to_local(wall.now()).isoformat(),
    }
    _finish(order)
    _log(order, caller, "request_extension", before, note=reason, data={"extension": wanted.label()})
    _tell(order, "order_dispatched", _secretaries(order), state="申请延期", note=reason)
    return order


def decide_extension(*, order: Order, actor: Person, approve: bool, note: str = "") -> Order:
    """Approve (once) or refuse the pending extension request."""
    action = "approve_extension" if approve else "deny_extension"
    # Refused with nothing pending, or (approving) what the completion clock would not take: overdue since
    # it was asked, or the policy changed.
    caller, before = _begin(order, actor, action)
    wanted = extension_asked(order.extension_request)
    if approve:
        clocks.extend(clock=_clock(order, COMPLETE_CLOCK), limit=wanted, allowed=_policy(order).extension)
        order.extension_granted = True
    order.extension_request = None
    _refresh_due(order)
    _finish(order)
    _log(order, caller, action, before, note=note, data={"extension": wanted.label()})
    _tell(
        order,
        "order_taken",
        _org_admins([order.organization_id]),
        state="已批准" if approve else "未批准",
        note=note,
    )
    return order


def resolve(*, order: Order, actor: Person, note: str, proof_ids: list[str] | None = None) -> Order:
    """Report the work done (回单) with notes and proof photos; the resident confirms or disputes."""
    caller, before = _begin(order, actor, "resolve")
    if proof_ids:
        storage.attach(
            owner_id=actor.id,
            public_ids=proof_ids,
            attached_type="order_proof",
            attached_id=order.id,
            field="proof_ids",
        )
    order.resolution_note = note
    order.resolved_at = wall.now()
    _finish(order, "resolved")
    _stop_clock(order, COMPLETE_CLOCK)
    clocks.show_deadline(order, None)
    _log(order, caller, "resolve", before, note=note, data={"proof": proof_ids or []})
    _schedule_auto_close(order)
    _tell(order, "order_resolved", [order.resident_id], note=note[:20])
    return order


def auto_close_after() -> timedelta:
    return timedelta(days=current_app.config["ORDERS_AUTO_CLOSE_DAYS"])


def _rate(order: Order, level: int, tags: list[str], comment: str, *, again: bool = False) -> Rating:
    """Rate the order once; ``again`` (confirming work redone after a reopen) replaces its rating, so the
    one rating an order has is the resident's last word on it."""
    # Rating again is refused before (states.refusal); this is for two ratings at once.
    rated = _refused(order, "rate", frozenset({states.OWNER}), Facts(order, rated=True))
    rating = db.session.get(Rating, order.id)
    if rating is not None and not again:
        raise rated
    new = rating is None
    if new:
        rating = Rating(order_id=order.id)
        db.session.add(rating)
    rating.organization_id, rating.community_id = order.organization_id, order.community_id
    rating.level, rating.tags, rating.comment, rating.created_at = level, tags, comment, wall.now()
    if new:
        # The same rating sent twice at once: on SQLite, whose reads take no lock, both found none.
        flush_unless_taken(rated)
    if order.organization_id is not None:
        recommend.refresh_records(organization_ids=[order.organization_id])
    if level <= BAD_RATING:
        org = db.session.get(Organization, order.organization_id) if order.organization_id else None
        if org is not None:
            org.dispatch_weight = max(MIN_DISPATCH_WEIGHT, round(org.dispatch_weight - BAD_RATING_PENALTY, 2))
        _supervise(
            order, "bad_rating", f"{order.category.name}（{order.number}）居民评价{rating.level_label}"
        )
    return rating


def confirm(*, order: Order, actor: Person, level: int, tags: list[str], comment: str) -> Order:
    """The resident confirms the work and rates it (确认办结)."""
    caller, before = _begin(order, actor, "confirm")
    order.closed_at = wall.now()
    _finish(order, "closed")
    # Rated already only if it was confirmed, then reopened (重办) and resolved again.
    rating = _rate(order, level, tags, comment, again=True)
    _log(
        order,
        caller,
        "confirm",
        before,
        note=comment,
        data={"level": level, "tags": tags, "label": rating.level_label},
    )
    return order


def rate(*, order: Order, actor: Person, level: int, tags: list[str], comment: str) -> Order:
    """Rate an order that closed without the resident (auto-closed)."""
    caller, before = _begin(order, actor, "rate")
    rating = _rate(order, level, tags, comment)
    _finish(order)
    _log(
        order,
        caller,
        "rate",
        before,
        note=comment,
        data={"level": level, "tags": tags, "label": rating.level_label},
    )
    return order


def reopen(*, order: Order, actor: Person, reason: str) -> Order:
    """The resident disputes the result within 7 days (重办): dispatched again to the same organization."""
    caller, before = _begin(order, actor, "reopen")
    order.reopen_count += 1
    order.closed_at = None
    order.resolved_at = None
    db.session.execute(update(OrderOffer).where(OrderOffer.order_id == order.id).values(active=False))
    offer = db.session.get(OrderOffer, (order.id, order.organization_id))
    offer.active, offer.offered_at = True, wall.now()
    order.pool = False
    order.dispatched_at = wall.now()
    order.taken_at = None  # to be taken again: 解决率 counts an order for the organization that took it
    _finish(order, "dispatched")
    _start_clock(order, ACCEPT_CLOCK, _policy(order).accept)
    if order.service_kind == "urgent":  # dispatched again: Sandan redispatches it if nobody takes it in time
        _start_clock(order, TAKE_TIMER, URGENT_TAKE_AFTER, escalates=False)
    # Named like a dispatch's: Sandan, redispatching it later, knows whom the reopen sent it to.
    org = db.session.get(Organization, order.organization_id)
    _log(order, caller, "reopen", before, note=reason, data={"organizations": [org.public_id]})
    if order.reopen_count >= 2:
        _supervise(order, "second_reopen", f"{order.category.name}（{order.number}）二次重办")
    _tell(
        order,
        "order_dispatched",
        _org_admins([order.organization_id]) + _secretaries(order),
        state="重办",
        note=reason,
    )
    return order


def cancel(*, order: Order, actor: Person, reason: str) -> Order:
    """Call the order off: the resident before an organization takes it, the community after."""
    caller, before = _begin(order, actor, "cancel")
    holder = {order.organization_id} - {None}
    # Every organization it stands offered to hears of it too (a pool names no holder until one takes it).
    offered = _offered_orgs(order, active_only=True) - holder
    _end(order, "cancelled")
    _log(order, caller, "cancel", before, note=reason)
    people = [order.resident_id] if states.OWNER not in caller.actors else []
    # The volunteers on the job as well as their organization's admins: they may be on their way.
    doing = [v.user_id for v in assigned_volunteers(order)]
    _tell(order, "order_resolved", people + _org_admins(holder) + doing, state="已取消", note=reason)
    _tell_withdrawn(order, offered, "order_resolved", state="已取消", note=reason)
    return order


# What Sandan does by itself


def _schedule_auto_close(order: Order) -> None:
    outbox.record(
        job=AUTO_CLOSE_JOB,
        args={"order_id": order.id, "resolved_at": order.resolved_at.isoformat()},
        run_at=order.resolved_at + auto_close_after(),
    )


def auto_close(*, order_id: int, resolved_at: str) -> bool:
    """Close a resolved order the resident left unconfirmed; nothing if it moved on since."""
    order = db.session.get(Order, order_id)
    if order is None or order.state != "resolved" or order.resolved_at is None:
        return False
    if order.resolved_at.isoformat() != resolved_at:
        return False
    if wall.now() < order.resolved_at + auto_close_after():
        # Come early: RQ's scheduler keeps whole seconds, so it can hand the job over within the second
        # before its time. Dropped here, the order would never close; it is scheduled again for its moment.
        _schedule_auto_close(order)
        return False
    caller, before = _begin(order, None, "auto_close")
    order.closed_at = wall.now()
    _finish(order, "closed")
    _log(order, caller, "auto_close", before, note=f"居民 {auto_close_after().days} 天未确认，系统自动办结")
    return True


def _on_overdue(sla_clock) -> None:
    order = db.session.get(Order, sla_clock.subject_id)
    if order is None or order.state in states.FINAL_STATES:
        return
    if sla_clock.escalates:
        order.is_overdue = True
        order.is_supervised = True
        _system_event(order, "overdue", data={"clock": sla_clock.name})
        return
    if sla_clock.name == DISPATCH_TIMER and order.state in ("submitted", "accepted", "returned"):
        _auto_dispatch(order, note="紧急工单未及时派单，系统自动派给推荐的组织")
    elif sla_clock.name == TAKE_TIMER and order.state == "dispatched":
        _auto_dispatch(order, note="紧急工单无人接单，系统改派给下一个推荐的组织")


def _auto_dispatch(order: Order, note: str) -> None:
    # One never offered it first; else one offered it before, but never one that let it lapse in this round:
    # sent back, it would be told 工单已派单 again every ten minutes while the secretaries heard nothing.
    tried = _offered_orgs(order, active_only=False)
    lapsed = _lapsed(order) if order.state == "dispatched" else set()
    candidate = recommend.best_candidate(order, exclude=tried) or recommend.best_candidate(
        order, exclude=lapsed
    )
    if candidate is None:
        # Sandan stops here (no timer runs on): the community dispatches it by hand, or whoever holds it
        # takes it late.
        why, told = "没有可承接的社会组织，请书记人工派单", "请人工派单"
        if lapsed:
            why = "紧急工单无人接单，已没有其他可改派的社会组织，系统不再改派，请书记人工派单"
            told = "无人接单，请人工派单"
        _system_event(order, "auto_dispatch_failed", note=why)
        _tell(order, "order_dispatched", _secretaries(order), state="无人承接", note=told)
        return
    action = "redispatch" if order.state == "dispatched" else "dispatch"
    dispatch(order=order, actor=None, organization_ids=[candidate], note=note, action=action)


def _lapsed(order: Order) -> set[int]:
    """The organizations that let a dispatched order lapse in this round of Sandan's dispatching: those of
    its redispatches since a person (or Sandan's first dispatch) last sent it out, and those of that
    sending, which lapsed first; those it stands offered to now among them."""
    named: set[str] = set()
    sendings = db.session.scalars(
        select(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.action.in_(("dispatch", "redispatch", "reopen")))
        .order_by(OrderEvent.id.desc())
    )
    for event in sendings:
        named.update(event.data.get("organizations", []))
        if event.action != "redispatch" or event.actor_role != states.SYSTEM:
            break
    ids = set(db.session.scalars(select(Organization.id).where(Organization.public_id.in_(named))))
    return ids | _offered_orgs(order, active_only=True)


def _on_warning(sla_clock) -> None:
    order = db.session.get(Order, sla_clock.subject_id)
    if order is not None and order.state not in states.FINAL_STATES:
        _system_event(order, "warning", data={"clock": sla_clock.name})


def _describe_subject(order_id: int) -> subjects.Description:
    order = db.session.get(Order, order_id)
    if order is None:
        return subjects.missing("工单", order_id)
    return subjects.Description(order.category.name, order.number, _page(order), order.public_id)


def _describe_subjects(order_ids: list[int]) -> dict[int, subjects.Description]:
    # One statement for the lot, reading only what the description needs.
    rows = db.session.execute(
        select(Order.id, Order.public_id, Order.number, ServiceCategory.name)
        .join(ServiceCategory, ServiceCategory.id == Order.category_id)
        .where(Order.id.in_(order_ids))
    )
    found = {
        order_id: subjects.Description(name, number, f"pages/orders/detail?id={public_id}", public_id)
        for order_id, public_id, number, name in rows
    }
    return {i: found.get(i) or subjects.missing("工单", i) for i in order_ids}


def _on_stopped(sla_clock) -> None:
    # A finished order counts in its organization's record (on time or not) at once.
    if sla_clock.name == COMPLETE_CLOCK and sla_clock.organization_id is not None:
        recommend.refresh_records(organization_ids=[sla_clock.organization_id])


def _on_supervision_closed(order_id: int) -> None:
    # The flag shows an open 督办: it goes with the last one closed.
    order = db.session.get(Order, order_id)
    if order is not None and not supervision.open_for(subject_type=SUBJECT, subject_id=order_id):
        order.is_supervised = False


subjects.register(
    subjects.SubjectType(
        name=SUBJECT,
        label="工单",
        describe=_describe_subject,
        describe_many=_describe_subjects,
        on_warning=_on_warning,
        on_overdue=_on_overdue,
        on_stopped=_on_stopped,
        on_supervision_closed=_on_supervision_closed,
        overdue_event="order_overdue",
    )
)


# Reading


def photos(order: Order, *, proof: bool = False):
    return storage.attached_to(attached_type="order_proof" if proof else SUBJECT, attached_id=order.id)


def rating_of(order: Order) -> Rating | None:
    return db.session.get(Rating, order.id)


def assigned_volunteers(order: Order) -> list[Volunteer]:
    return list(
        db.session.scalars(
            select(Volunteer)
            .join(OrderAssignment, OrderAssignment.volunteer_id == Volunteer.id)
            .where(OrderAssignment.order_id == order.id)
        )
    )


def offered_organizations(order: Order) -> list[Organization]:
    return list(
        db.session.scalars(
            select(Organization)
            .join(OrderOffer, OrderOffer.organization_id == Organization.id)
            .where(OrderOffer.order_id == order.id, OrderOffer.active.is_(True))
            .order_by(Organization.id)
        )
    )
