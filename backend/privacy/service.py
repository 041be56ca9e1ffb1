"""Consent before storing, masking by default, and a logged, checked reveal for every full read."""

from collections.abc import Callable, Collection

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend import clock
from backend.auth.access import holds
from backend.auth.roles import ROLE_LABELS, Role, ScopeType
from backend.db import db
from backend.errors import Forbidden, NotFound, ValidationFailed
from backend.privacy import crypto
from backend.privacy.crypto import KeyConfigError
from backend.privacy.kinds import CONSENT_LABELS, KINDS
from backend.privacy.models import Consent, SensitiveAccessLog

CURRENT_CONSENT_VERSION = "2026-11"


class ConsentRequired(Forbidden):
    code = "consent_required"
    message = "需先取得本人对该类敏感个人信息处理的单独同意"


def active_consent(*, user_id: int, kind: str) -> Consent | None:
    return db.session.scalar(
        select(Consent)
        .where(Consent.user_id == user_id, Consent.kind == kind, Consent.withdrawn_at.is_(None))
        .order_by(Consent.id.desc())
        .limit(1)
    )


def require_consent(*, user_id: int, kind: str) -> Consent:
    """Raise ConsentRequired unless the person's consent of this kind is on record and not withdrawn."""
    consent = active_consent(user_id=user_id, kind=kind)
    if consent is None:
        raise ConsentRequired(details={"consent": kind, "label": CONSENT_LABELS.get(kind, kind)})
    return consent


def grant_consent(
    *, user_id: int, kind: str, text_version: str, recorded_by_id: int | None = None
) -> Consent:
    """Record a consent (idempotent while one is active)."""
    if kind not in CONSENT_LABELS:
        raise ValidationFailed(details={"kind": [f"未知的同意类型: {kind}"]})
    existing = active_consent(user_id=user_id, kind=kind)
    if existing is not None:
        return existing
    consent = Consent(user_id=user_id, kind=kind, text_version=text_version, recorded_by_id=recorded_by_id)
    db.session.add(consent)
    try:
        db.session.commit()
    except IntegrityError:
        # Given at the same moment by another request (uq_consents_active): that one is the consent.
        db.session.rollback()
        existing = active_consent(user_id=user_id, kind=kind)
        if existing is None:
            raise
        return existing
    return consent


# Domains that keep sensitive values of their own (an errand's diagnosis...), each erasing a person's values
# stored under a consent when it is withdrawn: ``erase(user_id, consent_kind)``, in the withdrawal's
# transaction. Registered by the domain itself, as privacy knows nothing of them.
_erasers: list[Callable[[int, str], None]] = []


def on_withdrawal(erase: Callable[[int, str], None]) -> None:
    """Have ``erase(user_id, consent_kind)`` run whenever someone withdraws a consent."""
    _erasers.append(erase)


def withdraw_consent(*, user, kind: str) -> None:
    """Withdraw a consent and erase the person's stored values that depended on it."""
    consent = active_consent(user_id=user.id, kind=kind)
    if consent is None:
        raise NotFound("没有生效中的该项同意")
    # A conditional UPDATE: of two withdrawals at once, the second waits on the first's row lock.
    db.session.execute(
        sa.update(Consent)
        .where(Consent.user_id == user.id, Consent.kind == kind, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=clock.now())
        .execution_options(synchronize_session="fetch")
    )
    for attr, field_kind in (("phone", "phone"), ("id_number", "id_number")):
        if KINDS[field_kind].consent == kind:
            setattr(user, attr, None)
            setattr(user, attr + "_hmac", None)
    for erase in _erasers:
        erase(user.id, kind)
    db.session.commit()


def list_consents(*, user_id: int) -> list[Consent]:
    return list(db.session.scalars(select(Consent).where(Consent.user_id == user_id).order_by(Consent.id)))


def normalize(kind: str, value: str) -> str:
    return KINDS[kind].normalize(value)


def lookup_hash(kind: str, value: str) -> str:
    """The blind index of a value, for ``WHERE <field>_hmac = :hash`` lookups."""
    return crypto.blind_index(kind, normalize(kind, value))


def store(obj, kind: str, value: str | list | None, *, subject_user_id: int, attr: str | None = None) -> None:
    """Set a sensitive attribute (and its ``_hmac`` blind index, where the model has one), consent first."""
    attr = attr or kind
    if value is None:
        setattr(obj, attr, None)
        if hasattr(obj, attr + "_hmac"):
            setattr(obj, attr + "_hmac", None)
        return
    require_consent(user_id=subject_user_id, kind=KINDS[kind].consent)
    # Text is normalised by its kind; a structured value (a purchase's drug list) is stored as its domain
    # cleaned it.
    normalized = normalize(kind, value) if isinstance(value, str) else value
    setattr(obj, attr, normalized)
    if hasattr(obj, attr + "_hmac"):
        setattr(obj, attr + "_hmac", crypto.blind_index(kind, normalized))


def mask(kind: str, value: str | None) -> str | None:
    return None if value is None else KINDS[kind].mask(value)


def log_reveal(
    *,
    actor,
    actor_role: str,
    subject_user_id: int,
    field: str,
    resource: str,
    reason: str,
    street_id: int | None,
) -> None:
    db.session.add(
        SensitiveAccessLog(
            actor_id=actor.id,
            actor_role=actor_role,
            subject_user_id=subject_user_id,
            field=field,
            resource=resource,
            reason=reason,
            street_id=street_id,
        )
    )


def _residence_streets(subject) -> list[tuple[int, list]]:
    """(street id, scope nodes) of each place the subject lives, in the order of their memberships."""
    from backend.community.service import ancestors

    found = []
    for membership in subject.memberships:
        if membership.role == Role.RESIDENT:
            nodes = ancestors(membership.scope_type, membership.scope_id)
            streets = [scope_id for scope_type, scope_id in nodes if scope_type == ScopeType.STREET]
            if streets:
                found.append((streets[0], nodes))
    return found


def _user_reveal_grant(actor, subject) -> tuple[str, int | None] | None:
    """Which of the actor's roles lets them read the subject's own profile in full, and in which street
    (where the subject lives), if any."""
    residences = _residence_streets(subject)
    if actor.id == subject.id:
        return SELF, residences[0][0] if residences else None
    for role in (Role.SECRETARY, Role.STREET_ADMIN):
        for street_id, nodes in residences:
            if holds(actor, [role], nodes):
                return str(role), street_id
    return None


USER_FIELDS = ("phone", "id_number")
# What each field a full read names is called, for people reading the log: the user's own, and those
# the domains holding sensitive values of their own name (name_logged_fields).
_FIELD_LABELS = {field: KINDS[field].label for field in USER_FIELDS}


def name_logged_fields(labels: dict[str, str]) -> None:
    """Name the sensitive fields a domain logs full reads of (errands: 诊断, 药品清单, ...)."""
    _FIELD_LABELS.update(labels)


def field_label(field: str) -> str:
    return _FIELD_LABELS.get(field, field)


# A person reading their own value is logged too, in a role of its own.
SELF = "self"
_READER_LABELS = {SELF: "本人", **{str(role): label for role, label in ROLE_LABELS.items()}}


def reader_label(actor_role: str) -> str:
    """What the role a full read was made in is called (社区书记, 代办员, 本人)."""
    return _READER_LABELS.get(actor_role, actor_role)


def reveal_user_field(*, actor, subject, field: str, reason: str) -> str | None:
    """Return a user's full sensitive value to someone entitled to it, and log the read."""
    if field not in USER_FIELDS:
        raise ValidationFailed(details={"field": [f"只能查看: {', '.join(USER_FIELDS)}"]})
    grant = _user_reveal_grant(actor, subject)
    if grant is None:
        raise Forbidden("无权查看该居民的完整信息", code="reveal_forbidden")
    role, street_id = grant
    value = getattr(subject, field)
    log_reveal(
        actor=actor,
        actor_role=role,
        subject_user_id=subject.id,
        field=field,
        resource=f"user:{subject.public_id}",
        reason=reason,
        street_id=street_id,
    )
    db.session.commit()
    return value


def access_logs_page(
    *,
    subject_user_id: int | None,
    limit: int,
    cursor: str | None,
    street_ids: Collection[int] | None = None,
) -> dict:
    """Full reads of sensitive values, newest first: optionally of one person only, and only those made in
    ``street_ids`` when given (a street admin audits their own street)."""
    from backend.pagination import paginate

    query = select(SensitiveAccessLog)
    if street_ids is not None:
        query = query.where(SensitiveAccessLog.street_id.in_(sorted(street_ids)))
    if subject_user_id is not None:
        query = query.where(SensitiveAccessLog.subject_user_id == subject_user_id)
    return paginate(query, SensitiveAccessLog.id, limit=limit, cursor=cursor, descending=True)


# Every encrypted column in the schema: (table, column). A key rotation rewrites each.
def encrypted_columns() -> list[tuple[str, str]]:
    """Every (table, column) stored encrypted, read from the models so a new one is never forgotten."""
    return [
        (table.name, column.name)
        for table in db.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, crypto.EncryptedText)
    ]


class UnreadableValue(KeyConfigError):
    """A stored value no configured key opens, named by table, column and row (in Chinese, for the
    operator running `sandan rotate-keys`)."""

    def __init__(self, table: str, column: str, row_id: int) -> None:
        self.table, self.column, self.row_id = table, column, row_id
        super().__init__(
            f"表 {table} 字段 {column} 中 id 为 {row_id} 的行，其加密值无法用已配置的任何密钥解密"
        )


def rotate_all_keys() -> int:
    """Re-encrypt every stored sensitive value under the current (first) key; return how many changed.

    All or nothing: a value no configured key opens (the old key left out of the list too soon) rewrites
    nothing, and the UnreadableValue (a KeyConfigError) names where it is."""
    try:
        return _rotate_all_keys()
    except KeyConfigError:
        db.session.rollback()
        raise


def _rotate_all_keys() -> int:
    count = 0
    for table_name, column_name in encrypted_columns():
        # A plain-Text view of the table reads and writes the ciphertext itself, bypassing EncryptedText.
        raw = sa.table(table_name, sa.column("id", sa.Integer), sa.column(column_name, sa.Text))
        column = raw.c[column_name]
        rows = db.session.execute(sa.select(raw.c.id, column).where(column.is_not(None))).all()
        for row_id, token in rows:
            try:
                rotated = crypto.rotate(token)
            except KeyConfigError as exc:
                raise UnreadableValue(table_name, column_name, row_id) from exc
            if rotated != token:
                # Only if the value is still the one read: one saved meanwhile (a new phone number) is
                # already under the current key, and must not be put back to the old value.
                done = db.session.execute(
                    sa.update(raw).where(raw.c.id == row_id, column == token).values({column_name: rotated})
                )
                count += done.rowcount
    db.session.commit()
    return count
