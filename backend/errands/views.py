"""Reading errands: one errand as its viewer may see it, and the lists each role works from (keyset pages)."""

import csv
import io

from sqlalchemy import select, text, tuple_

from backend.auth.models import User
from backend.community.models import Community
from backend.community.service import overseen_community_ids
from backend.db import db
from backend.errands import service, states
from backend.errands.models import AGENT_QUEUE_SQL, Errand, ErrandType
from backend.errors import Forbidden, ValidationFailed
from backend.pagination import cursor_int, cursor_time, decode_parts, encode_parts
from backend.storage.schemas import small_url


def with_view(errand: Errand, viewer: User) -> Errand:
    """Attach what this viewer may see: allowed actions, the checklist, the agent, the timeline."""
    caller = service.caller_for(errand, viewer)
    agent = service.agent_of(errand)
    definition = errand.definition
    errand.view = {
        "allowed_actions": service.allowed_actions(errand, caller.actors),
        "is_agent": states.AGENT in caller.actors,
        "agent": None
        if agent is None
        else {"id": agent.public_id, "name": agent.real_name or agent.nickname},
        "community": db.session.get(Community, errand.community_id),
        "materials": [
            {
                "code": m["code"],
                "name": m["name"],
                "required": m["required"],
                "condition": m.get("condition", ""),
                "note": m.get("note", ""),
                "received": bool(errand.materials.get(m["code"])),
                "missing": m["code"] in errand.missing_materials,
            }
            for m in definition["materials"]
        ],
        "steps": [
            {
                "state": s["state"],
                "state_label": states.STATE_LABELS[s["state"]],
                "name": s["name"],
                "owner": s["owner"],
                "limit": s["limit"],
            }
            for s in definition["steps"]
        ],
        "sensitive_fields": definition.get("sensitive_fields", []),
        "receipts": [_receipt(errand.public_id, u) for u in service.receipt_photos(errand)],
        "timeline": service.timeline(errand),
    }
    return errand


# Keyset cursors over (due_at, id) or over id alone.


def _page_by_deadline(query, *, limit: int, cursor: str | None) -> dict:
    if cursor:
        due, last_id = decode_parts(cursor, 2)
        after = (cursor_time(due), cursor_int(last_id))
        query = query.where(tuple_(Errand.due_at, Errand.id) > after)
    rows = list(db.session.scalars(query.order_by(Errand.due_at, Errand.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {"items": rows, "next_cursor": encode_parts([last.due_at.isoformat(), last.id]) if more else None}


def _page_newest(query, *, limit: int, cursor: str | None) -> dict:
    if cursor:
        (last_id,) = decode_parts(cursor, 1)
        query = query.where(Errand.id < cursor_int(last_id))
    rows = list(db.session.scalars(query.order_by(Errand.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_parts([rows[-1].id]) if more and rows else None}


def _type_filter(query, type_code: str | None):
    if type_code:
        query = query.where(
            Errand.type_id == select(ErrandType.id).where(ErrandType.code == type_code).scalar_subquery()
        )
    return query


def my_errands(*, resident: User, state: str | None, limit: int, cursor: str | None) -> dict:
    """A resident's own errands, newest first."""
    query = select(Errand).where(Errand.resident_id == resident.id)
    if state:
        query = query.where(Errand.state == state)
    return _page_newest(query, limit=limit, cursor=cursor)


def agent_queue(*, agent: User, state: str | None, limit: int, cursor: str | None) -> dict:
    """A proxy agent's open errands, the nearest deadline first (paused ones last)."""
    # Unfiltered: states.AGENT_STATES, as the very text the partial index ix_errands_agent_queue is over.
    in_queue = Errand.state == state if state else text(f"({AGENT_QUEUE_SQL})")
    query = select(Errand).where(Errand.agent_id == agent.id, in_queue)
    return _page_by_deadline(query, limit=limit, cursor=cursor)


def community_filter(viewer: User, community_public_id: str | None) -> list[int]:
    overseen = overseen_community_ids(viewer)
    if community_public_id is None:
        return overseen
    community_id = db.session.scalar(select(Community.id).where(Community.public_id == community_public_id))
    if community_id is None or community_id not in overseen:
        raise Forbidden("只能查看本社区（街道）的代办")
    return [community_id]


def board(
    *,
    viewer: User,
    community_public_id: str | None,
    type_code: str | None,
    state: str | None,
    overdue: bool | None,
    unassigned: bool | None,
    limit: int,
    cursor: str | None,
    number: str | None = None,
) -> dict:
    """The community's errands by deadline: what secretaries assign and chase; or, given a ``number``, the
    errand of that number (in any state)."""
    query = select(Errand).where(Errand.community_id.in_(community_filter(viewer, community_public_id)))
    query = _type_filter(query, type_code)
    if number:
        query = query.where(Errand.number == number.upper())
    if state:
        query = query.where(Errand.state == state)
    elif not number:
        query = query.where(Errand.state.not_in(sorted(states.FINAL_STATES)))
    if overdue is not None:
        query = query.where(Errand.is_overdue.is_(overdue))
    if unassigned:
        query = query.where(Errand.agent_id.is_(None))
    return _page_by_deadline(query, limit=limit, cursor=cursor)


# Public notice (公示): name and amount only.

NOTICE_COLUMNS = ("name", "amount_fen")


def public_notice(*, viewer: User, type_code: str, community_public_id: str | None) -> list[dict]:
    """Approved errands of a type that is publicly noticed (低保): each applicant's name and amount, nothing
    else."""
    kind = service.get_type(type_code)
    if not service.version_of(kind).definition.get("public_notice"):
        raise ValidationFailed(details={"type": ["该代办类型不公示"]})
    rows = db.session.execute(
        select(Errand.applicant_name, Errand.amount_fen)
        .where(
            Errand.type_id == kind.id,
            Errand.community_id.in_(community_filter(viewer, community_public_id)),
            Errand.outcome == "approved",
            Errand.amount_fen.is_not(None),
            Errand.state.in_(("result", "returned_to_resident", "completed")),
        )
        .order_by(Errand.id)
    ).all()
    return [{"name": name, "amount_fen": amount} for name, amount in rows]


# A text cell beginning with one of these is a formula to a spreadsheet (Excel, WPS): "=HYPERLINK(...)" typed
# as a name would run in whoever opens the export.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text(value):
    """A text cell a spreadsheet shows as typed: led by a single quote where it would start a formula (the
    OWASP advice for CSV injection). Numbers are written as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def notice_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    # Lines end in CRLF (RFC 4180): the writer then quotes a cell holding either line break. With "\n" alone
    # it left a bare CR unquoted, which a spreadsheet reads as a new row: "x\r=cmd..." was a row of its own
    # starting with a formula, past the quote above.
    writer = csv.DictWriter(out, fieldnames=NOTICE_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({column: _as_text(value) for column, value in row.items()} for row in rows)
    return out.getvalue()


def _receipt(errand_public_id: str, upload) -> dict:
    url = f"/api/v1/errands/{errand_public_id}/receipts/{upload.public_id}"
    return {
        "id": upload.public_id,
        "content_type": upload.content_type,
        "url": url,
        "small_url": small_url(url),
    }
