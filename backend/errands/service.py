"""Red proxy errands (红色代办): types as versioned data, and the pipeline every errand runs through.

Every action locks the errand, checks the table in errands.states, changes it, writes a timeline event,
moves the step clocks (each step's limit comes from the errand's own type version) and records the step's
automatic actions as outbox jobs, all in the caller's transaction; the route commits. Sensitive values go
through the privacy layer: consent first, encrypted at rest, revealed only to the assigned agent.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from sqlalchemy import or_, select, update
from sqlalchemy.orm.exc import StaleDataError

from backend import clock as wall
from backend.appointments import service as appointments
from backend.auth.models import User
from backend.auth.roles import Role, ScopeType
from backend.auth.service import members_with_role, residence_required
from backend.community.models import Community, Grid
from backend.db import db, flush_unless_taken
from backend.errands import definitions, states
from backend.errands.models import Errand, ErrandEvent, ErrandType, ErrandTypeVersion
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.notify.service import notify_many
from backend.outbox import service as outbox
from backend.privacy import service as privacy
from backend.privacy.kinds import KINDS
from backend.sla import clocks, subjects
from backend.sla.rules import Limit
from backend.sla.service import load_calendar
from backend.storage import service as storage
from backend.supervision import service as supervision

SUBJECT = "errand"
STEP_JOB = "errands.step_actions"
REMIND_JOB = "errands.remind_materials"
STEP_EVENT = "errand_step_changed"
# Actions that put the errand in an agent's queue: the agent hears of it.
QUEUEING_ACTIONS = frozenset({"accept", "assign"})
# Actions the resident does not need telling about (they did it, or nothing changed for them).
QUIET_ACTIONS = frozenset({"record_info", "rate"})
RECEIPT_ATTACHMENT = "errand_receipt"
# The resident's word for a change of agent (the state itself does not change).
ASSIGNED = "更换代办员"  # five characters: the phrase WeChat shows


class IllegalAction(Conflict):
    """409 for an action the errand's state or the caller's role does not allow, saying what would be."""

    def __init__(self, errand: Errand, action: str, actors: frozenset[str], message: str | None = None):
        allowed = allowed_actions(errand, actors)
        label = states.ACTION_LABELS.get(action, action)
        super().__init__(
            message or f"代办当前为“{errand.state_label}”，不能{label}",
            code="illegal_action",
            details={"state": errand.state, "state_label": errand.state_label, "allowed_actions": allowed},
        )


def allowed_actions(errand: Errand, actors: frozenset[str] | set[str]) -> list[str]:
    """The actions these capacities may take on the errand now: the table's for its state, less a rating
    once given (one per errand)."""
    found = states.allowed_actions(errand.state, actors)
    return [a for a in found if not (a == "rate" and errand.rating is not None)]


# Types


def shipped_errand_types() -> list[dict]:
    """The starting types shipped with the product (backend/seed/errand-*.json)."""
    seed = resources.files("backend").joinpath("seed")
    found = sorted(
        p.name for p in seed.iterdir() if p.name.startswith("errand-") and p.name.endswith(".json")
    )
    return [json.loads(seed.joinpath(name).read_text(encoding="utf-8")) for name in found]


def _clean_definition(definition: dict) -> dict:
    errors = definitions.check(definition)
    if errors:
        raise ValidationFailed(
            "代办类型的定义有误", details={f"definition.{k}": v for k, v in errors.items()}
        )
    return {k: v for k, v in definition.items() if k != "code"}


def seed_errand_types() -> list[str]:
    """Add the shipped types not yet known (by code); types the street has edited stay as they are."""
    existing = set(db.session.scalars(select(ErrandType.code)))
    added = []
    for entry in shipped_errand_types():
        if entry["code"] in existing:
            continue
        _create_type(actor=None, code=entry["code"], definition=entry)
        added.append(entry["code"])
    db.session.commit()
    return added


def _code_taken() -> ValidationFailed:
    return ValidationFailed(details={"code": ["该代办类型编码已存在"]})


def _create_type(*, actor: User | None, code: str, definition: dict) -> ErrandType:
    clean = _clean_definition(definition)
    kind = ErrandType(code=code, name=clean["name"], enabled=True, current_version=1)
    db.session.add(kind)
    flush_unless_taken(_code_taken())
    db.session.add(
        ErrandTypeVersion(
            type_id=kind.id,
            version=1,
            definition=clean,
            created_by_id=actor.id if actor else None,
            created_at=wall.now(),
        )
    )
    return kind


def create_type(*, actor: User, code: str, definition: dict) -> ErrandType:
    """Add an errand type (version 1); the caller commits."""
    if db.session.scalar(select(ErrandType.id).where(ErrandType.code == code)) is not None:
        raise _code_taken()
    # Not in a savepoint: on SQLite one that opens the transaction commits when released, and the type would
    # stand apart from what the caller writes with it (an Idempotency-Key's record). A refusal here ends the
    # whole transaction, which is all the type's.
    return _create_type(actor=actor, code=code, definition=definition)


def add_version(*, kind: ErrandType, actor: User, definition: dict) -> ErrandTypeVersion:
    """Edit a type by adding its next version; errands already started keep the version they started with."""
    clean = _clean_definition(definition)
    # The number is taken by the first write: it holds the type's row (PostgreSQL) or the database (SQLite,
    # where a read takes no lock and two edits at once read the same number) until commit, so edits made at
    # once number their versions one after the other.
    db.session.execute(
        update(ErrandType)
        .where(ErrandType.id == kind.id)
        .values(current_version=ErrandType.current_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(kind)
    version = ErrandTypeVersion(
        type_id=kind.id,
        version=kind.current_version,
        definition=clean,
        created_by_id=actor.id,
        created_at=wall.now(),
    )
    db.session.add(version)
    kind.name = clean["name"]
    return version


def set_enabled(*, kind: ErrandType, enabled: bool) -> ErrandType:
    kind.enabled = enabled
    return kind


def list_types(*, include_disabled: bool = False) -> list[ErrandType]:
    query = select(ErrandType).order_by(ErrandType.id)
    if not include_disabled:
        query = query.where(ErrandType.enabled.is_(True))
    return list(db.session.scalars(query))


def get_type(code: str) -> ErrandType:
    kind = db.session.scalar(select(ErrandType).where(ErrandType.code == code))
    if kind is None:
        raise NotFound("代办类型不存在")
    return kind


def version_of(kind: ErrandType, version: int | None = None) -> ErrandTypeVersion:
    found = db.session.scalar(
        select(ErrandTypeVersion).where(
            ErrandTypeVersion.type_id == kind.id,
            ErrandTypeVersion.version == (version or kind.current_version),
        )
    )
    if found is None:
        raise NotFound("代办类型的该版本不存在")
    return found


def versions_of(kind: ErrandType) -> list[ErrandTypeVersion]:
    return list(
        db.session.scalars(
            select(ErrandTypeVersion)
            .where(ErrandTypeVersion.type_id == kind.id)
            .order_by(ErrandTypeVersion.version)
        )
    )


# Who the caller is to this errand


@dataclass(frozen=True)
class Caller:
    user: User | None
    actors: frozenset[str]


def _membership_ids(user: User, role: str, scope_type: str) -> set[int]:
    return {m.scope_id for m in user.memberships if m.role == role and m.scope_type == scope_type}


def _street_of(community_id: int) -> int:
    return db.session.scalar(select(Community.street_id).where(Community.id == community_id))


def serves_as_agent(user: User, community_id: int) -> bool:
    """Whether the user is a proxy agent for the community (held in it or in its street)."""
    return community_id in _membership_ids(user, Role.PROXY_AGENT, ScopeType.COMMUNITY) or _street_of(
        community_id
    ) in _membership_ids(user, Role.PROXY_AGENT, ScopeType.STREET)


def caller_for(errand: Errand, user: User) -> Caller:
    """Work out in which capacities a user stands to an errand (possibly none)."""
    actors: set[str] = set()
    if errand.resident_id == user.id:
        actors.add(states.OWNER)
    if errand.community_id in _membership_ids(user, Role.SECRETARY, ScopeType.COMMUNITY):
        actors.add(states.SECRETARY)
    if _street_of(errand.community_id) in _membership_ids(user, Role.STREET_ADMIN, ScopeType.STREET):
        actors.add(states.STREET_ADMIN)
    if errand.agent_id == user.id and serves_as_agent(user, errand.community_id):
        actors.add(states.AGENT)
    return Caller(user=user, actors=frozenset(actors))


def get_errand(public_id: str, *, viewer: User) -> Errand:
    """Return an errand the viewer may see; 404 otherwise."""
    errand = db.session.scalar(select(Errand).where(Errand.public_id == public_id))
    if errand is None or not caller_for(errand, viewer).actors:
        raise NotFound("代办不存在")
    return errand


def _lock(errand: Errand) -> Errand:
    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(Errand.id).where(Errand.id == errand.id).with_for_update())
    db.session.refresh(errand)
    return errand


def _begin(errand: Errand, user: User | None, action: str) -> tuple[Caller, str]:
    """Lock the errand and check the action is allowed to this caller now; return (caller, state before)."""
    _lock(errand)
    caller = caller_for(errand, user) if user is not None else Caller(None, frozenset({states.SYSTEM}))
    if not states.can(errand.state, action, caller.actors):
        raise IllegalAction(errand, action, caller.actors)
    return caller, errand.state


def _flush() -> None:
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict("代办刚被他人处理，请刷新后再试", code="errand_changed") from None


def _role_word(caller: Caller, action: str) -> str:
    if caller.user is None:
        return states.SYSTEM
    allowed = states.transition_actors(action) & caller.actors
    for actor in (states.OWNER, states.AGENT, states.SECRETARY, states.STREET_ADMIN):
        if actor in allowed:
            return actor
    return sorted(caller.actors)[0] if caller.actors else "unknown"


# Timeline


def _event(
    errand: Errand, *, action: str, actor: User | None, actor_role: str, from_state, note="", data=None
):
    event = ErrandEvent(
        errand_id=errand.id,
        at=wall.now(),
        actor_id=actor.id if actor else None,
        actor_role=actor_role,
        action=action,
        from_state=from_state,
        to_state=errand.state,
        note=note,
        data=data or {},
    )
    db.session.add(event)
    db.session.flush()
    return event


def _system_event(errand: Errand, action: str, note: str = "", data=None) -> ErrandEvent:
    return _event(
        errand,
        action=action,
        actor=None,
        actor_role=states.SYSTEM,
        from_state=errand.state,
        note=note,
        data=data,
    )


def timeline(errand: Errand) -> list[ErrandEvent]:
    """The errand's events, oldest first."""
    return list(
        db.session.scalars(
            select(ErrandEvent).where(ErrandEvent.errand_id == errand.id).order_by(ErrandEvent.id)
        )
    )


# Clocks: each clocked step starts its own on entry, with the limit from the errand's type version.


def _step_limit(errand: Errand, state: str) -> Limit | None:
    step = definitions.step_of(errand.definition, state)
    return None if step is None else Limit(step["limit"]["amount"], step["limit"]["unit"])


def _clock(errand: Errand, name: str):
    return clocks.current(subject_type=SUBJECT, subject_id=errand.id, name=name)


def _refresh_due(errand: Errand) -> None:
    clocks.show_deadline(errand, _clock(errand, errand.state))


def _move_clocks(errand: Errand, before: str, after: str) -> None:
    if after in states.FINAL_STATES:
        if after == "completed":  # the resident's step was met; anything else still open was not
            found = _clock(errand, before)
            if found is not None:
                clocks.stop(clock=found)
        clocks.stop_all(subject_type=SUBJECT, subject_id=errand.id, reason=after)
        clocks.show_deadline(errand, None)
        errand.is_overdue = False
        return
    if after == "materials_pending":
        found = _clock(errand, states.PAUSED_BY_PENDING)
        if found is not None and found.state == "running":
            clocks.pause(clock=found)
        clocks.show_deadline(errand, None)
        return
    previous = states.PAUSED_BY_PENDING if before == "materials_pending" else before
    found = _clock(errand, previous)
    if found is not None:
        clocks.stop(clock=found)
    errand.is_overdue = False
    limit = _step_limit(errand, after)
    if limit is not None and _clock(errand, after) is None:
        clocks.start(
            subject_type=SUBJECT,
            subject_id=errand.id,
            name=after,
            limit=limit,
            community_id=errand.community_id,
            # The resident's own step (居民确认) is nobody's to be warned of or supervised for: run out,
            # it completes the errand (_on_overdue).
            escalates=not _residents_step(errand, after),
        )
    _refresh_due(errand)


def _residents_step(errand: Errand, state: str) -> bool:
    step = definitions.step_of(errand.definition, state)
    return step is not None and step.get("owner") == "resident"


def _step(
    errand: Errand, caller: Caller, action: str, before: str, *, note: str = "", data=None
) -> ErrandEvent:
    """Move to the action's state: clocks, the timeline event, and the step's automatic actions (outbox)."""
    after = states.transition(before, action).to
    errand.state = after
    _flush()
    if after != before:
        _move_clocks(errand, before, after)
    event = _event(
        errand,
        action=action,
        actor=caller.user,
        actor_role=_role_word(caller, action),
        from_state=before,
        note=note,
        data=data,
    )
    if action not in QUIET_ACTIONS:
        outbox.record(job=STEP_JOB, args={"errand_id": errand.id, "event_id": event.id})
    return event


# Creating


def _resident_grid_ids(user: User) -> set[int]:
    return _membership_ids(user, Role.RESIDENT, ScopeType.GRID)


def no_residence() -> Forbidden:
    """For booking an errand for oneself with no residence registered; the route's answer, too, to anyone
    holding no role that books (most likely someone new)."""
    return residence_required("预约代办")


def _for_whom(actor: User, resident_public_id: str | None) -> tuple[User, Grid, bool]:
    """(resident, grid, entered on behalf): the resident themself, or a secretary for a resident."""
    if resident_public_id is None:
        homes = _resident_grid_ids(actor)
        if not homes:
            raise no_residence()
        return actor, db.session.get(Grid, min(homes)), False
    resident = db.session.scalar(select(User).where(User.public_id == resident_public_id))
    if resident is None or not _resident_grid_ids(resident):
        raise ValidationFailed(details={"resident_id": ["居民不存在或未登记网格"]})
    grids = [db.session.get(Grid, g) for g in sorted(_resident_grid_ids(resident))]
    mine = _membership_ids(actor, Role.SECRETARY, ScopeType.COMMUNITY)
    for grid in grids:
        if grid.community_id in mine:
            return resident, grid, True
    raise Forbidden("只能为本社区的居民预约代办", code="out_of_scope")


def _check_sensitive(
    errand_or_definition: dict, values: dict, resident_id: int, *, items: list[dict] | None = None
) -> dict:
    """Check the sensitive values a step wants to store: the type collects them, and every consent is on
    record (the entrustment and each kind's own) — before anything is written. A purchase's drug list
    (``items``, already checked) is one of them: the type's money flag collects it."""
    wanted = {k: v for k, v in values.items() if v not in (None, "")}
    allowed = set(errand_or_definition.get("sensitive_fields", []))
    if extra := sorted(set(wanted) - allowed):
        raise ValidationFailed(
            "该代办事项不收集这些信息", details={f: ["该代办事项不收集此信息"] for f in extra}
        )
    if items:
        wanted[definitions.PURCHASE_ITEMS] = items
    if wanted:
        privacy.require_consent(user_id=resident_id, kind="entrustment")
        for field in sorted(wanted):
            privacy.require_consent(
                user_id=resident_id, kind=KINDS[definitions.SENSITIVE_FIELDS[field]].consent
            )
    return wanted


def _erase_withdrawn(user_id: int, consent: str) -> None:
    """Erase a resident's errand values stored under a consent they withdrew; the entrustment (授权委托),
    which every one of them was stored under, takes them all."""
    fields = [
        field
        for field, kind in definitions.SENSITIVE_FIELDS.items()
        if consent == "entrustment" or KINDS[kind].consent == consent
    ]
    if not fields:
        return
    # The version moves too: an action in flight on one of these errands then stops (409) rather than write
    # over the erasure with what it read before.
    db.session.execute(
        update(Errand)
        .where(Errand.resident_id == user_id, or_(*(getattr(Errand, f).is_not(None) for f in fields)))
        .values({**{f: None for f in fields}, "version": Errand.version + 1})
        .execution_options(synchronize_session=False)
    )


privacy.on_withdrawal(_erase_withdrawn)
privacy.name_logged_fields(definitions.SENSITIVE_LABELS)


def _store_sensitive(errand: Errand, values: dict) -> None:
    for field, value in values.items():
        privacy.store(
            errand, definitions.SENSITIVE_FIELDS[field], value, subject_user_id=errand.resident_id, attr=field
        )


def _check_items(items: list[dict], *, field: str = "items") -> list[dict]:
    errors = {}
    for i, item in enumerate(items):
        if item.get("prescription_required") and not item.get("prescription_present"):
            errors[f"{field}.{i}.prescription_present"] = ["处方药须凭已有处方代购"]
    if errors:
        raise ValidationFailed("处方药须凭已有处方代购", details=errors)
    return [
        {
            "drug_name": item["drug_name"],
            "quantity": item["quantity"],
            "prescription_required": bool(item.get("prescription_required")),
            "prescription_present": bool(item.get("prescription_present")),
        }
        for item in items
    ]


def create_errand(
    *,
    actor: User,
    type_code: str,
    applicant_name: str | None = None,
    description: str = "",
    resident_public_id: str | None = None,
    appointment_id: str | None = None,
    items: list[dict] | None = None,
    sensitive: dict | None = None,
) -> Errand:
    """Book an errand (预约代办) for oneself, or for a resident of one's community; the caller commits."""
    kind = db.session.scalar(select(ErrandType).where(ErrandType.code == type_code))
    if kind is None or not kind.enabled:
        raise ValidationFailed(details={"type": ["代办类型不存在或已停用"]})
    version = version_of(kind)
    resident, grid, on_behalf = _for_whom(actor, resident_public_id)
    if items and not version.definition.get("money"):
        raise ValidationFailed(details={"items": ["该代办事项没有购买清单"]})
    clean_items = _check_items(items or [])
    wanted = _check_sensitive(version.definition, sensitive or {}, resident.id, items=clean_items)
    booking = _appointment(appointment_id, resident, type_code) if appointment_id else None
    errand = Errand(
        number="",
        type_id=kind.id,
        type=kind,
        type_version_id=version.id,
        type_version=version,
        resident_id=resident.id,
        applicant_name=applicant_name or resident.real_name or resident.nickname or "居民",
        entered_by_id=actor.id if on_behalf else None,
        community_id=grid.community_id,
        grid_id=grid.id,
        appointment_id=appointment_id,
        description=description,
        state="appointed",
        materials={},
        missing_materials=[],
    )
    db.session.add(errand)
    db.session.flush()
    errand.number = f"DB{wall.to_local(wall.now()):%Y%m%d}{errand.id:06d}"
    _store_sensitive(errand, wanted)
    limit = _step_limit(errand, "appointed")
    if limit is not None:
        clocks.start(
            subject_type=SUBJECT,
            subject_id=errand.id,
            name="appointed",
            limit=limit,
            community_id=errand.community_id,
            # Booked for a visit: the community receives it (受理) at the counter, so its time runs from
            # then, not from the booking days before (which ran out before the resident came).
            at=max(booking.starts_at, wall.now()) if booking is not None else None,
        )
    _refresh_due(errand)
    event = _event(
        errand,
        action="create",
        actor=actor,
        actor_role=states.SECRETARY if on_behalf else states.OWNER,
        from_state=None,
        note="社区代为预约" if on_behalf else "",
        data={"type_version": version.version, **({"appointment": appointment_id} if appointment_id else {})},
    )
    if booking is not None:
        link_appointment(booking, errand)
    outbox.record(job=STEP_JOB, args={"errand_id": errand.id, "event_id": event.id})
    return errand


# Appointments (网上预约), through the appointments domain's own service. An errand made from a booking is
# linked to it, and the booking stays booked until the visit: the reminder goes the evening before, and the
# resident may still move it. The visit is the errand's acceptance at the counter (受理: eligibility and
# materials checked, an agent assigned), which marks the booking attended. Called off before then (cancelled,
# or failed), the errand takes its booking with it, giving the place back; a booking is not cancelled on its
# own while its errand waits for it.


def _appointment(public_id: str, resident: User, type_code: str):
    try:
        booking = appointments.get_booking(public_id)
    except NotFound:
        raise ValidationFailed(details={"appointment_id": ["预约不存在"]}) from None
    if booking.resident_id != resident.id:
        raise ValidationFailed(details={"appointment_id": ["不是该居民的预约"]})
    if booking.state == "cancelled":
        raise ValidationFailed(details={"appointment_id": ["该预约已取消"]})
    if booking.errand_id is not None:
        raise ValidationFailed(details={"appointment_id": ["该预约已转为代办"]})
    if getattr(booking, "errand_type", type_code) != type_code:
        raise ValidationFailed(details={"appointment_id": ["预约的事项与代办类型不符"]})
    return booking


def link_appointment(booking, errand: Errand) -> None:
    """Link the appointment booking to this errand; it stays booked until the resident comes."""
    appointments.link_errand(booking, errand_id=errand.id)


def _booking_of(errand: Errand):
    return appointments.get_booking(errand.appointment_id) if errand.appointment_id else None


def _visit_made(errand: Errand) -> None:
    """The errand was accepted at the counter: its booking, if still booked, was attended."""
    booking = _booking_of(errand)
    if booking is not None and booking.state == "booked":
        appointments.mark_attended(booking)


def _visit_moved(booking) -> None:
    """The resident's visit moved (appointments.move): an errand still waiting for it (appointed) is received
    from the new time, as it was from the first (create_errand)."""
    errand = db.session.get(Errand, booking.errand_id)
    if errand is None:
        return
    _lock(errand)
    found = _clock(errand, "appointed") if errand.state == "appointed" else None
    if found is None or found.started_at <= wall.now():
        return
    clocks.restart(clock=found, at=max(booking.starts_at, wall.now()))
    _refresh_due(errand)
    _flush()


appointments.on_moved(_visit_moved)


def _visit_called_off(errand: Errand, actor: User, reason: str) -> None:
    """The errand ended before the visit: its booking is cancelled, the place given back."""
    booking = _booking_of(errand)
    if booking is not None:
        appointments.cancel_for_errand(booking, actor_id=actor.id, reason=reason)


# Acting


def _agent(public_id: str, errand: Errand) -> User:
    agent = db.session.scalar(select(User).where(User.public_id == public_id))
    if agent is None or not serves_as_agent(agent, errand.community_id):
        raise ValidationFailed(details={"agent_id": ["不是本社区的代办员"]})
    # A disabled account cannot sign in: the errand would wait in a queue nobody reads.
    if not agent.is_active:
        raise ValidationFailed(details={"agent_id": ["该代办员账号已停用"]})
    return agent


def _known_materials(errand: Errand, codes: list[str], field: str) -> list[str]:
    names = definitions.material_names(errand.definition)
    if unknown := [c for c in codes if c not in names]:
        raise ValidationFailed(details={field: [f"该事项没有这些材料：{', '.join(unknown)}"]})
    return codes


def accept(
    *, errand: Errand, actor: User, agent_public_id: str, eligibility_note: str, materials: list[str]
) -> Errand:
    """Accept the errand (受理): eligibility and the materials seen checked, an agent assigned."""
    caller, before = _begin(errand, actor, "accept")
    agent = _agent(agent_public_id, errand)
    _known_materials(errand, materials, "materials")
    errand.agent_id = agent.id
    errand.eligibility_note = eligibility_note
    errand.materials = {code: True for code in materials}
    errand.accepted_at = wall.now()
    _step(errand, caller, "accept", before, note=eligibility_note, data={"agent": agent.public_id})
    _visit_made(errand)
    return errand


def assign(
    *, errand: Errand, actor: User, agent_public_id: str, note: str = "", cash_handed_over: bool | None = None
) -> Errand:
    """Give the errand to another agent (改派代办员); one holding the resident's cash hands it over, which
    the secretary confirms (``cash_handed_over``) and the timeline records with the amount."""
    caller, before = _begin(errand, actor, "assign")
    agent = _agent(agent_public_id, errand)
    if agent.id == errand.agent_id:
        # 改派 is to another agent (an errand has one from its acceptance on): the same one is no change, and
        # answering as if it were would tell the resident of a new agent and misstate who holds the cash.
        raise ValidationFailed(details={"agent_id": ["该代办已由这位代办员办理，请选择另一位代办员"]})
    previous = agent_of(errand)
    data = {"agent": agent.public_id}
    changing_hands = previous is not None
    held = _cash_held(errand) if changing_hands else None
    if held is None and cash_handed_over:
        raise ValidationFailed(details={"cash_handed_over": ["原代办员未持有居民现金，无需确认交接"]})
    if held is not None and not cash_handed_over:
        raise ValidationFailed(
            f"代办员持有居民的现金 {_yuan(held)} 元，改派须确认已交给新的代办员",
            details={
                "cash_handed_over": [f"原代办员持有现金 {_yuan(held)} 元，请确认已当面交给新的代办员后勾选"]
            },
        )
    errand.agent_id = agent.id
    if changing_hands:
        data["from_agent"] = previous.public_id
    if held is not None:
        data["cash_handed_over_fen"] = held
        handed = f"现金 {_yuan(held)} 元已由 {_name(previous)} 交给 {_name(agent)}"
        note = f"{handed}；{note}" if note else handed
    _step(errand, caller, "assign", before, note=note, data=data)
    return errand


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def _name(user: User) -> str:
    return user.real_name or user.nickname


def _cash_held(errand: Errand) -> int | None:
    """The resident's money the agent holds now, in fen: all the cash collected until a result accounts for
    it, the change after one (until it is handed back with the result); None when they hold none."""
    if not errand.definition.get("money") or errand.cash_received_fen is None:
        return None
    if errand.state not in states.AGENT_STATES:
        return None
    held = errand.cash_received_fen if errand.change_returned_fen is None else errand.change_returned_fen
    return held or None


def record_info(*, errand: Errand, actor: User, values: dict) -> Errand:
    """Store sensitive personal information the type needs (consent first; encrypted; masked in replies)."""
    caller, before = _begin(errand, actor, "record_info")
    wanted = _check_sensitive(errand.definition, values, errand.resident_id)
    if not wanted:
        raise ValidationFailed(details={"values": ["请填写至少一项"]})
    _store_sensitive(errand, wanted)
    _step(errand, caller, "record_info", before, data={"fields": sorted(wanted)})
    return errand


def request_materials(*, errand: Errand, actor: User, missing: list[str], note: str = "") -> Errand:
    """Ask the resident for missing materials (待补材料): the step's clock pauses, reminders follow."""
    caller, before = _begin(errand, actor, "request_materials")
    _known_materials(errand, missing, "missing")
    names = definitions.material_names(errand.definition)
    errand.missing_materials = missing
    errand.pending_since = wall.now()
    wanted = "、".join(names[c] for c in missing)
    _step(errand, caller, "request_materials", before, note=f"缺少{wanted}" + (f"；{note}" if note else ""))
    _schedule_reminder(errand, count=1)
    return errand


def _schedule_reminder(errand: Errand, *, count: int) -> None:
    reminder = errand.definition.get("reminder")
    if not reminder or count > reminder["times"]:
        return
    limit = Limit(reminder["amount"], reminder["unit"])
    at = load_calendar().add(wall.now(), limit.calendar_amount(), limit.unit).at
    outbox.record(
        job=REMIND_JOB,
        args={"errand_id": errand.id, "pending_since": errand.pending_since.isoformat(), "count": count},
        run_at=at,
    )


def collect(
    *,
    errand: Errand,
    actor: User,
    materials: list[str],
    handover: dict,
    items: list[dict] | None = None,
    cash_received_fen: int | None = None,
) -> Errand:
    """Collect the materials (收件) against a signed hand-over slip; every required material present."""
    caller, before = _begin(errand, actor, "collect")
    _known_materials(errand, materials, "materials")
    received = {**errand.materials, **{code: True for code in materials}}
    names = definitions.material_names(errand.definition)
    if missing := [c for c in definitions.required_materials(errand.definition) if not received.get(c)]:
        raise ValidationFailed(
            "必需的材料未收齐，可先通知居民补材料",
            details={"materials": [f"缺少：{'、'.join(names[c] for c in missing)}"]},
        )
    if errand.definition.get("money"):
        errors = {}
        if not (items or errand.items):
            errors["items"] = ["请列出代购的药品"]
        if cash_received_fen is None:
            errors["cash_received_fen"] = ["请登记收到的现金（分）"]
        if errors:
            raise ValidationFailed("代购须登记清单和收到的现金", details=errors)
        clean_items = _check_items(items) if items else errand.items
        needs_prescription = any(i["prescription_required"] for i in clean_items)
        if needs_prescription and not received.get("prescription"):
            raise ValidationFailed(details={"materials": ["清单中有处方药，须收取已有处方"]})
        if items:
            # A list given here replaces the one booked, under the same consents.
            _store_sensitive(
                errand, _check_sensitive(errand.definition, {}, errand.resident_id, items=clean_items)
            )
        errand.cash_received_fen = cash_received_fen
    elif items or cash_received_fen is not None:
        raise ValidationFailed(details={"items": ["该代办事项不涉及钱物"]})
    errand.materials = received
    errand.missing_materials = []
    errand.pending_since = None
    errand.handover = {
        **handover,
        "materials": [names[c] for c in received],
        "at": wall.now().isoformat(),
        **({"cash_received_fen": cash_received_fen} if cash_received_fen is not None else {}),
    }
    _step(errand, caller, "collect", before, note=f"交接单号 {handover['number']}")
    return errand


def lodge(*, errand: Errand, actor: User, office: str, receipt_number: str) -> Errand:
    """Lodge the application with the office (递交), recording its receipt number."""
    caller, before = _begin(errand, actor, "lodge")
    errand.office = office
    errand.receipt_number = receipt_number
    _step(errand, caller, "lodge", before, note=f"{office}，回执号 {receipt_number}")
    return errand


def review(*, errand: Errand, actor: User, note: str = "") -> Errand:
    """The office has started its review (部门审核中)."""
    caller, before = _begin(errand, actor, "review")
    _step(errand, caller, "review", before, note=note)
    return errand


def _balance(cash: int | None, spent: int | None, change: int | None) -> None:
    errors = {}
    for field, value in (
        ("cash_received_fen", cash),
        ("amount_spent_fen", spent),
        ("change_returned_fen", change),
    ):
        if value is None:
            errors[field] = ["必填（单位：分）"]
    if not errors and cash != spent + change:
        message = f"收到 {cash} 分 ≠ 实付 {spent} 分 + 找零 {change} 分"
        errors = {f: [message] for f in ("cash_received_fen", "amount_spent_fen", "change_returned_fen")}
    if errors:
        raise ValidationFailed("钱款不平：收到的现金应等于实付加找零", details=errors)


def record_result(
    *,
    errand: Errand,
    actor: User,
    outcome: str,
    note: str,
    amount_fen: int | None = None,
    certificate_number: str | None = None,
    valid_until: str | None = None,
    amount_spent_fen: int | None = None,
    change_returned_fen: int | None = None,
    receipt_photo_id: str | None = None,
) -> Errand:
    """Record the office's result: approved or refused (a refusal, delivered, still completes the errand)."""
    caller, before = _begin(errand, actor, "record_result")
    fields = set(errand.definition["result"].get("fields", []))
    approved = outcome == "approved"
    errors = {}
    if amount_fen is not None and "amount_fen" not in fields:
        errors["amount_fen"] = ["该事项的结果没有金额"]
    if approved and "amount_fen" in fields and amount_fen is None:
        errors["amount_fen"] = ["批准时须填写金额（分）"]
    if certificate_number and "certificate_number" not in fields:
        errors["certificate_number"] = ["该事项的结果没有证书编号"]
    if approved and "certificate_number" in fields and not certificate_number:
        errors["certificate_number"] = ["发证时须填写证书编号"]
    if errors:
        raise ValidationFailed(details=errors)
    if errand.definition.get("money"):
        spent = amount_spent_fen if approved else (amount_spent_fen or 0)
        change = change_returned_fen
        if not approved and change is None:
            change = errand.cash_received_fen
        _balance(errand.cash_received_fen, spent, change)
        if approved and not receipt_photo_id:
            raise ValidationFailed(details={"receipt_photo_id": ["请上传购药票据照片"]})
        if receipt_photo_id:
            storage.attach(
                owner_id=actor.id,
                public_ids=[receipt_photo_id],
                attached_type=RECEIPT_ATTACHMENT,
                attached_id=errand.id,
                field="receipt_photo_id",
            )
        errand.amount_spent_fen, errand.change_returned_fen = spent, change
    elif amount_spent_fen is not None or change_returned_fen is not None or receipt_photo_id:
        raise ValidationFailed(details={"amount_spent_fen": ["该代办事项不涉及钱物"]})
    wanted = {}
    if certificate_number:
        wanted = _check_sensitive(
            errand.definition, {"certificate_number": certificate_number}, errand.resident_id
        )
    _store_sensitive(errand, wanted)
    errand.outcome = outcome
    errand.result_note = note
    errand.amount_fen = amount_fen if approved else None
    errand.valid_until = valid_until if approved else None
    label = "已批准" if approved else "未批准"
    _step(errand, caller, "record_result", before, note=f"{label}：{note}", data={"outcome": outcome})
    return errand


def return_to_resident(*, errand: Errand, actor: User, note: str = "") -> Errand:
    """Hand the result and the originals back to the resident (送还): the result is delivered."""
    caller, before = _begin(errand, actor, "return_to_resident")
    errand.delivered_at = wall.now()
    _step(errand, caller, "return_to_resident", before, note=note)
    return errand


def complete(*, errand: Errand, actor: User, note: str = "") -> Errand:
    """Close the errand (办结) once the resident has the result back."""
    caller, before = _begin(errand, actor, "complete")
    errand.completed_at = errand.closed_at = wall.now()
    _step(errand, caller, "complete", before, note=note)
    return errand


def rate(*, errand: Errand, actor: User, level: int, comment: str = "") -> Errand:
    """The resident's one rating of a completed errand."""
    caller, before = _begin(errand, actor, "rate")
    if errand.rating is not None:
        raise Conflict(
            "该代办已评价过",
            code="already_rated",
            details={"state": errand.state, "allowed_actions": allowed_actions(errand, caller.actors)},
        )
    errand.rating, errand.rating_comment = level, comment
    _step(errand, caller, "rate", before, note=comment, data={"level": level})
    return errand


def _hand_back_cash(errand: Errand, change_returned_fen: int | None) -> None:
    """A purchase that stops while the agent holds the resident's cash (collected, not yet accounted for by
    a result) stops only with the cash handed back recorded: nothing was bought, so all of it."""
    if not errand.definition.get("money"):
        if change_returned_fen is not None:
            raise ValidationFailed(details={"change_returned_fen": ["该代办事项不涉及钱物"]})
        return
    cash = errand.cash_received_fen
    if cash is None or errand.change_returned_fen is not None:
        if change_returned_fen is not None:
            problem = "尚未收取现金，无需登记退还" if cash is None else "钱款已在登记结果时结清"
            raise ValidationFailed(details={"change_returned_fen": [problem]})
        return
    if change_returned_fen is None:
        raise ValidationFailed(
            "代办员收取的现金须退还居民并登记",
            details={"change_returned_fen": [f"已收现金 {cash} 分，请登记退还的现金（分）"]},
        )
    if change_returned_fen != cash:
        raise ValidationFailed(
            "钱款不平：未代购时收到的现金应全部退还",
            details={"change_returned_fen": [f"收到 {cash} 分 ≠ 退还 {change_returned_fen} 分"]},
        )
    errand.amount_spent_fen, errand.change_returned_fen = 0, change_returned_fen


def cancel(
    *,
    errand: Errand,
    actor: User,
    reason: str,
    at_resident_request: bool = False,
    change_returned_fen: int | None = None,
) -> Errand:
    """Call the errand off: the resident themself, or the community (at the resident's request or not)."""
    caller, before = _begin(errand, actor, "cancel")
    _hand_back_cash(errand, change_returned_fen)
    errand.cancelled_by_resident = states.OWNER in caller.actors or at_resident_request
    errand.close_reason = reason
    errand.closed_at = wall.now()
    _step(errand, caller, "cancel", before, note=reason, data=_cash_to_return(errand))
    if before == "appointed":
        _visit_called_off(errand, actor, reason)
    return errand


def _cash_to_return(errand: Errand) -> dict | None:
    """What the agent holds of the resident's money and must give back when the errand stops (all of it
    before a result, the change after one), for their notice (step_actions)."""
    held = errand.change_returned_fen if errand.cash_received_fen is not None else None
    return {"cash_to_return_fen": held} if held else None


def fail(*, errand: Errand, actor: User, reason: str, change_returned_fen: int | None = None) -> Errand:
    """The errand cannot be done (办理失败), with the reason the resident will read."""
    caller, before = _begin(errand, actor, "fail")
    _hand_back_cash(errand, change_returned_fen)
    errand.close_reason = reason
    errand.closed_at = wall.now()
    _step(errand, caller, "fail", before, note=reason, data=_cash_to_return(errand))
    if before == "appointed":
        _visit_called_off(errand, actor, reason)
    return errand


def supervise(*, errand: Errand, actor: User, reason: str):
    """Raise a 街道督办 on the errand by hand (its street's admin), with the reason, as an overdue step's is
    raised: on the timeline (without the reason), told to the community, the street and the agent holding
    the step (with it); refused (409) while one raised by hand is open on it. Return the record."""
    _lock(errand)
    caller = caller_for(errand, actor)
    if states.STREET_ADMIN not in caller.actors:
        raise Forbidden("只有本街道的管理员可以督办", code="supervise_forbidden")
    record = supervision.open_record(
        subject_type=SUBJECT,
        subject_id=errand.id,
        community_id=errand.community_id,
        reason="manual",
        title=f"{errand.title}（{errand.number}）",
        note=reason,
        raised_by_id=actor.id,
    )
    # The timeline is the resident's to read: it says the street raised a 督办, never why (the admin's words
    # may judge the resident or the agent); the reason stays on the record, for staff.
    _event(
        errand,
        action="supervise",
        actor=actor,
        actor_role=states.STREET_ADMIN,
        from_state=errand.state,
        data={"reason": "manual"},
    )
    # All staff (the community, the street, the agent): they may read why.
    people = clocks.answerable(community_id=errand.community_id, organization_id=None, escalate=True)
    if errand.agent_id is not None and errand.state in states.AGENT_STATES:
        people.append(errand.agent_id)
    notify_many(
        user_ids=[p for p in dict.fromkeys(people) if p != actor.id],
        event="supervision_raised",
        fields={
            "subject": errand.title,
            "number": errand.number,
            "state": "督办",
            "note": f"{record.reason_label}：{reason}",
            "at": wall.now().isoformat(),
        },
        page=f"pages/errands/detail?id={errand.public_id}",
        subject_type=SUBJECT,
        subject_id=errand.id,
    )
    return record


# Sensitive values


def reveal(*, errand: Errand, actor: User, field: str, reason: str) -> str | list | None:
    """Return one full sensitive value (a purchase's whole drug list for ``items``) to the assigned agent
    while the errand is in their hands, and log the read."""
    if field not in definitions.SENSITIVE_FIELDS:
        raise ValidationFailed(details={"field": [f"只能查看: {', '.join(definitions.SENSITIVE_FIELDS)}"]})
    if states.AGENT not in caller_for(errand, actor).actors:
        raise Forbidden("只有该代办的代办员可以查看完整信息", code="reveal_forbidden")
    # Their steps only: once the result and the originals are back with the resident (returned_to_resident),
    # nothing the agent still does needs a full value.
    if errand.state not in states.AGENT_STATES:
        raise Forbidden("代办员的办理已结束，不能再查看完整信息", code="reveal_forbidden")
    value = getattr(errand, field)
    privacy.log_reveal(
        actor=actor,
        actor_role=states.AGENT,
        subject_user_id=errand.resident_id,
        field=field,
        resource=f"errand:{errand.public_id}",
        reason=reason,
        street_id=_street_of(errand.community_id),
    )
    return value


# What Sandan does by itself (outbox jobs)


def _notify(errand: Errand, user_ids, *, state: str, note: str = "", at: datetime | None = None) -> None:
    ids = [i for i in user_ids if i is not None]
    if ids:
        notify_many(
            user_ids=ids,
            event=STEP_EVENT,
            fields={
                "subject": errand.title,
                "number": errand.number,
                "state": state,
                "note": note[:20] or None,
                "at": (at or wall.now()).isoformat(),
            },
            page=f"pages/errands/detail?id={errand.public_id}",
            subject_type=SUBJECT,
            subject_id=errand.id,
        )


def step_actions(*, errand_id: int, event_id: int) -> bool:
    """A step's automatic actions: tell the resident in plain words, put the errand in the agent's queue, and
    take it out of it when someone else calls it off."""
    errand = db.session.get(Errand, errand_id)
    event = db.session.get(ErrandEvent, event_id)
    if errand is None or event is None or event.errand_id != errand.id:
        return False
    label = ASSIGNED if event.action == "assign" else states.STATE_LABELS[event.to_state]
    if event.actor_id != errand.resident_id:
        _notify(errand, [errand.resident_id], state=label, note=event.note, at=event.at)
    if event.action == "create" and errand.state == "appointed":
        # Receiving it (受理) is the community's: asked only while it still waits (the job may run late).
        secretaries = members_with_role(
            role=Role.SECRETARY, scope_type=ScopeType.COMMUNITY, scope_id=errand.community_id
        )
        others = [i for i in secretaries if i != event.actor_id]
        _notify(errand, others, state="待受理", note=errand.applicant_name, at=event.at)
    # Cash handed from one agent to the other on a reassignment: both hear how much.
    handed = (event.data or {}).get("cash_handed_over_fen") if event.action == "assign" else None
    cash = f"现金 {_yuan(handed)} 元" if handed else None
    if (
        event.action in QUEUEING_ACTIONS
        and errand.agent_id is not None
        and errand.state not in states.FINAL_STATES
    ):
        state, note = ("接收现金", cash) if cash else ("新代办", errand.applicant_name)
        _notify(errand, [errand.agent_id], state=state, note=note, at=event.at)
    taken_from = (event.data or {}).get("from_agent") if event.action == "assign" else None
    if taken_from is not None:
        previous = db.session.scalar(select(User.id).where(User.public_id == taken_from))
        if previous is not None and previous != errand.agent_id:
            state, note = ("交出现金", cash) if cash else ("已改派", event.note)
            _notify(errand, [previous], state=state, note=note, at=event.at)
    stop = CALLED_OFF.get(event.action)
    if stop is not None and errand.agent_id is not None and event.actor_id != errand.agent_id:
        # The agent may be on the way to the office, or holding the resident's cash: they stop, and give
        # the cash back.
        cash = (event.data or {}).get("cash_to_return_fen")
        state, note = stop[0], event.note
        if cash:
            state, note = stop[1], f"现金 {cash / 100:.2f} 元；{event.note}"
        _notify(errand, [errand.agent_id], state=state, note=note, at=event.at)
    return True


# Ending an errand someone else holds: the steps (notify.events) of the agent's notice, without cash and
# with cash to hand back (终止并退还现金 reaches WeChat as the phrase written for it, 终止退现金).
CALLED_OFF = {"cancel": ("停止办理", "退还现金"), "fail": ("终止办理", "终止并退还现金")}


def remind_materials(*, errand_id: int, pending_since: str, count: int) -> bool:
    """Remind the resident of the materials still missing; nothing if they arrived (or the wait changed)."""
    errand = db.session.get(Errand, errand_id)
    if errand is None:
        return False
    # Checked under the lock: the materials may have been collected since this job read the errand.
    _lock(errand)
    if errand.state != "materials_pending" or errand.pending_since is None:
        return False
    if errand.pending_since.isoformat() != pending_since:
        return False
    names = definitions.material_names(errand.definition)
    wanted = "、".join(names[c] for c in errand.missing_materials)
    _system_event(errand, "remind_materials", note=f"还缺{wanted}", data={"count": count})
    _notify(errand, [errand.resident_id], state="待补材料", note=f"还缺{wanted}")
    _schedule_reminder(errand, count=count + 1)
    _flush()
    return True


def _on_overdue(sla_clock) -> None:
    errand = db.session.get(Errand, sla_clock.subject_id)
    if errand is None or errand.state in states.FINAL_STATES:
        return
    if errand.state == sla_clock.name and _residents_step(errand, errand.state):
        _complete_unconfirmed(errand, sla_clock)
        return
    errand.is_overdue = True
    _system_event(errand, "overdue", data={"step": sla_clock.name})
    _tell_agent_of_card(errand, sla_clock, "supervision_raised", "已超时")


def _complete_unconfirmed(errand: Errand, sla_clock) -> None:
    """The resident had the result back and did not confirm within their step's limit: the errand is done
    (办结) all the same, as an order resolved and never confirmed closes by itself."""
    caller, before = _begin(errand, None, "complete")
    errand.completed_at = errand.closed_at = wall.now()
    limit = Limit(sla_clock.amount, sla_clock.unit)
    _step(errand, caller, "complete", before, note=f"居民{limit.label()}内未确认，系统自动办结")


def _on_warning(sla_clock) -> None:
    errand = db.session.get(Errand, sla_clock.subject_id)
    if errand is not None and errand.state not in states.FINAL_STATES:
        _system_event(errand, "warning", data={"step": sla_clock.name})
        _tell_agent_of_card(errand, sla_clock, "sla_warning", "即将超时")


def _tell_agent_of_card(errand: Errand, sla_clock, event: str, state: str) -> None:
    """The engine tells the community and the street of a card; a step in the agent's hands (the errand in
    their queue) is theirs to hurry, so the agent hears of it too."""
    if errand.agent_id is None or errand.state != sla_clock.name or errand.state not in states.AGENT_STATES:
        return
    notify_many(
        user_ids=[errand.agent_id],
        event=event,
        fields={
            "subject": errand.title,
            "number": errand.number,
            "state": state,
            "at": sla_clock.due_at.isoformat(),
        },
        page=f"pages/errands/detail?id={errand.public_id}",
        subject_type=SUBJECT,
        subject_id=errand.id,
    )


def _describe_subject(errand_id: int) -> subjects.Description:
    errand = db.session.get(Errand, errand_id)
    if errand is None:
        return subjects.missing("代办", errand_id)
    return subjects.Description(
        errand.title, errand.number, f"pages/errands/detail?id={errand.public_id}", errand.public_id
    )


def _describe_subjects(errand_ids: list[int]) -> dict[int, subjects.Description]:
    # One statement for the lot, reading only what the description needs (not the sensitive columns).
    rows = db.session.execute(
        select(Errand.id, Errand.public_id, Errand.number, ErrandTypeVersion.definition)
        .join(ErrandTypeVersion, ErrandTypeVersion.id == Errand.type_version_id)
        .where(Errand.id.in_(errand_ids))
    )
    found = {
        errand_id: subjects.Description(
            definition["name"], number, f"pages/errands/detail?id={public_id}", public_id
        )
        for errand_id, public_id, number, definition in rows
    }
    return {i: found.get(i) or subjects.missing("代办", i) for i in errand_ids}


subjects.register(
    subjects.SubjectType(
        name=SUBJECT,
        label="代办",
        describe=_describe_subject,
        describe_many=_describe_subjects,
        on_warning=_on_warning,
        on_overdue=_on_overdue,
        overdue_event="supervision_raised",
    )
)


# Reading


def in_agents_hands(*, agent_id: int, community_ids) -> list[str]:
    """The numbers of the errands of these communities at a step the agent carries out (their queue),
    oldest first."""
    return list(
        db.session.scalars(
            select(Errand.number)
            .where(
                Errand.agent_id == agent_id,
                Errand.community_id.in_(sorted(community_ids)),
                Errand.state.in_(sorted(states.AGENT_STATES)),
            )
            .order_by(Errand.id)
        )
    )


def agent_of(errand: Errand) -> User | None:
    return db.session.get(User, errand.agent_id) if errand.agent_id else None


def receipt_photos(errand: Errand):
    return storage.attached_to(attached_type=RECEIPT_ATTACHMENT, attached_id=errand.id)


def step_clocks(errand: Errand):
    return clocks.clocks_of(subject_type=SUBJECT, subject_id=errand.id)
