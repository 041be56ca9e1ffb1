"""The errand API: /errand-types (versioned definitions), /errands and one POST per pipeline action."""

from flask import Response, g

from backend import idempotency
from backend.auth import access
from backend.auth.roles import Role
from backend.clock import to_local
from backend.db import db
from backend.errands import metrics, service, views
from backend.errands.models import Errand, ErrandType, ErrandTypeVersion
from backend.errands.schemas import (
    ErrandAcceptSchema,
    ErrandAssignSchema,
    ErrandBoardQuerySchema,
    ErrandCallOffSchema,
    ErrandCancelSchema,
    ErrandCollectSchema,
    ErrandCreateSchema,
    ErrandListQuerySchema,
    ErrandLodgeSchema,
    ErrandMetricsQuerySchema,
    ErrandMetricsSchema,
    ErrandNoteSchema,
    ErrandNoticeQuerySchema,
    ErrandNoticeSchema,
    ErrandPageSchema,
    ErrandRateSchema,
    ErrandRecordInfoSchema,
    ErrandRequestMaterialsSchema,
    ErrandResultSchema,
    ErrandRevealedSchema,
    ErrandRevealSchema,
    ErrandSchema,
    ErrandStepDurationListSchema,
    ErrandTypeCreateSchema,
    ErrandTypeListSchema,
    ErrandTypePatchSchema,
    ErrandTypeSchema,
    ErrandTypeVersionSchema,
)
from backend.errors import NotFound
from backend.extensions import Blueprint
from backend.storage.routes import photo_response
from backend.storage.schemas import PhotoQuerySchema
from backend.supervision.models import Supervision
from backend.supervision.schemas import SupervisionRaiseSchema, SupervisionSchema

blp = Blueprint("errands", __name__, description="红色代办：代办类型、预约、受理、收件、递交、结果、送还")

OVERSEERS = (Role.SECRETARY, Role.STREET_ADMIN)
AGENT = (Role.PROXY_AGENT,)
# Actions are checked against the errand's state and the caller's standing by the service (409/404); the
# route declares who may call at all.
# A resident's own errands stay theirs whatever roles they hold now (one who moved away holds none): owning
# the errand (its resident_id) entitles them, which the service checks (caller_for), not a residence.
OWN_ERRANDS = access.signed_in_as("own errands only")
INVOLVED = access.signed_in_as("own errands, or as the errand's agent, community secretary or street admin")


# Types


def _type_view(kind: ErrandType, *, with_versions: bool = False) -> ErrandType:
    kind.view = {"definition": service.version_of(kind).definition}
    if with_versions:
        kind.view["versions"] = [
            {
                "version": v.version,
                "name": v.definition["name"],
                "created_at": to_local(v.created_at).isoformat(),
            }
            for v in service.versions_of(kind)
        ]
    return kind


@blp.get("/errand-types")
@access.signed_in
@blp.response(200, ErrandTypeListSchema)
def list_types():
    """可预约的代办类型及其当前版本的定义（材料、步骤与时限、受理部门、结果）。"""
    return {"items": [_type_view(k) for k in service.list_types()]}


@blp.post("/errand-types")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(ErrandTypeCreateSchema)
@blp.response(201, ErrandTypeSchema)
@blp.doc(**idempotency.DOC)
def create_type(args):
    """新增代办类型（街道管理员），无需改代码。带 Idempotency-Key 重试不会重复。"""
    kind = idempotency.create_once(
        "errand-types",
        ErrandType,
        lambda: service.create_type(actor=g.user, code=args["code"], definition=args["definition"]),
    )
    return _type_view(kind, with_versions=True)


@blp.get("/errand-types/<string:code>")
@access.signed_in
@blp.response(200, ErrandTypeSchema)
def get_type(code):
    """代办类型的当前定义与版本历史。"""
    return _type_view(service.get_type(code), with_versions=True)


@blp.post("/errand-types/<string:code>/versions")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(ErrandTypeVersionSchema)
@blp.response(201, ErrandTypeSchema)
@blp.doc(**idempotency.DOC)
def add_version(args, code):
    """修改代办类型：生成新版本；已开始的代办仍按原版本办理。带 Idempotency-Key 重试不会多出一版。"""
    kind = service.get_type(code)
    idempotency.create_once(
        f"errand-types/{kind.id}/versions",  # by id: a code of up to 64 letters would not fit the column
        ErrandTypeVersion,
        lambda: service.add_version(kind=kind, actor=g.user, definition=args["definition"]),
    )
    return _type_view(kind, with_versions=True)


@blp.patch("/errand-types/<string:code>")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(ErrandTypePatchSchema)
@blp.response(200, ErrandTypeSchema)
def patch_type(args, code):
    """停用或启用代办类型。"""
    kind = service.set_enabled(kind=service.get_type(code), enabled=args["enabled"])
    db.session.commit()
    return _type_view(kind, with_versions=True)


# Errands


def _errand(errand_id: str) -> Errand:
    return service.get_errand(errand_id, viewer=g.user)


def _show(errand: Errand):
    return views.with_view(errand, g.user)


def _commit_and_show(errand: Errand):
    db.session.commit()
    return _show(errand)


@blp.post("/errands")
@access.roles(Role.RESIDENT, Role.SECRETARY, refusal=service.no_residence)
@blp.arguments(ErrandCreateSchema)
@blp.response(201, ErrandSchema)
@blp.doc(**idempotency.DOC)
def create_errand(args):
    """预约代办：居民为自己，或书记为本社区居民预约；可由网上预约转来。带 Idempotency-Key 重试不会重复。"""
    errand = idempotency.create_once(
        "errands",
        Errand,
        lambda: service.create_errand(
            actor=g.user,
            type_code=args["type"],
            applicant_name=args["applicant_name"],
            description=args["description"],
            resident_public_id=args["resident_id"],
            appointment_id=args["appointment_id"],
            items=args["items"],
            sensitive=args["sensitive"],
        ),
    )
    return _show(errand)


@blp.get("/errands")
@OWN_ERRANDS
@blp.arguments(ErrandListQuerySchema, location="query")
@blp.response(200, ErrandPageSchema)
def my_errands(args):
    """我的代办：本人的（或书记为本人预约的），新的在前；搬离后也仍可查看。"""
    return views.my_errands(resident=g.user, state=args["state"], limit=args["limit"], cursor=args["cursor"])


@blp.get("/errands/queue")
@access.roles(*AGENT)
@blp.arguments(ErrandListQuerySchema, location="query")
@blp.response(200, ErrandPageSchema)
def agent_queue(args):
    """代办员的待办队列：时限最近的在前（待补材料暂停计时的排在后面）。"""
    return views.agent_queue(agent=g.user, state=args["state"], limit=args["limit"], cursor=args["cursor"])


@blp.get("/errands/board")
@access.roles(*OVERSEERS)
@blp.arguments(ErrandBoardQuerySchema, location="query")
@blp.response(200, ErrandPageSchema)
def board(args):
    """本社区（街道）在办的代办，时限最近的在前；可筛选未指派、已超时。"""
    return views.board(
        viewer=g.user,
        community_public_id=args["community_id"],
        type_code=args["type"],
        state=args["state"],
        overdue=args["overdue"],
        unassigned=args["unassigned"],
        limit=args["limit"],
        cursor=args["cursor"],
        number=args["number"],
    )


@blp.get("/errands/overdue")
@access.roles(*OVERSEERS)
@blp.arguments(ErrandBoardQuerySchema, location="query")
@blp.response(200, ErrandPageSchema)
def overdue(args):
    """超时清单：当前步骤已超过时限的代办。"""
    return views.board(
        viewer=g.user,
        community_public_id=args["community_id"],
        type_code=args["type"],
        state=args["state"],
        overdue=True,
        unassigned=args["unassigned"],
        limit=args["limit"],
        cursor=args["cursor"],
        number=args["number"],
    )


@blp.get("/errands/metrics")
@access.roles(*OVERSEERS)
@blp.arguments(ErrandMetricsQuerySchema, location="query")
@blp.response(200, ErrandMetricsSchema)
def errand_metrics(args):
    """代办完成率（办结 ÷ (受理 − 居民取消)，不予批准的结果送达也算办结）与按时率，按类型、社区或月份。"""
    return metrics.completion(
        community_ids=views.community_filter(g.user, args["community_id"]),
        group_by=args["group_by"],
        type_code=args["type"],
        since=args["since"],
        until=args["until"],
    )


@blp.get("/errands/metrics/steps")
@access.roles(*OVERSEERS)
@blp.arguments(ErrandMetricsQuerySchema, location="query")
@blp.response(200, ErrandStepDurationListSchema)
def step_durations(args):
    """各步骤平均用时（小时）与超时次数，按受理日期筛选（与完成率同一批代办）。"""
    return {
        "items": metrics.step_durations(
            community_ids=views.community_filter(g.user, args["community_id"]),
            type_code=args["type"],
            since=args["since"],
            until=args["until"],
        )
    }


@blp.get("/errands/public-notice")
@access.roles(*OVERSEERS)
@blp.arguments(ErrandNoticeQuerySchema, location="query")
@blp.response(200, ErrandNoticeSchema, content_type="application/json")
@blp.alt_response(200, content_type="text/csv", success=True, description="format=csv")
def public_notice(args):
    """公示名单（如低保）：只有姓名和金额（分）两列；format=csv 下载表格。"""
    rows = views.public_notice(
        viewer=g.user, type_code=args["type"], community_public_id=args["community_id"]
    )
    if args["format"] == "csv":
        return Response(
            views.notice_csv(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{args["type"]}-notice.csv"'},
        )
    return {"items": rows}


@blp.get("/errands/<string:errand_id>")
@access.signed_in
@blp.response(200, ErrandSchema)
def get_errand(errand_id):
    """代办详情与进度（白话时间线）；敏感信息一律脱敏。"""
    return _show(_errand(errand_id))


@blp.get("/errands/<string:errand_id>/receipts/<string:upload_id>")
@access.signed_in
@blp.arguments(PhotoQuerySchema, location="query")
@blp.response(200, content_type="image/*")
def receipt_photo(args, errand_id, upload_id):
    """代购票据照片。"""
    errand = _errand(errand_id)
    for upload in service.receipt_photos(errand):
        if upload.public_id == upload_id:
            return photo_response(upload, args["size"])
    raise NotFound("图片不存在")


@blp.post("/errands/<string:errand_id>/reveal")
@access.roles(*AGENT)
@blp.arguments(ErrandRevealSchema)
@blp.response(200, ErrandRevealedSchema)
def reveal(args, errand_id):
    """查看完整敏感信息：仅限该代办的代办员、仅在办理期间，须说明原因，每次查看记入日志。"""
    errand = _errand(errand_id)
    value = service.reveal(errand=errand, actor=g.user, field=args["field"], reason=args["reason"])
    db.session.commit()
    return {"field": args["field"], "value": value}


# One POST per action.


@blp.post("/errands/<string:errand_id>/accept")
@access.roles(*OVERSEERS)
@blp.arguments(ErrandAcceptSchema)
@blp.response(200, ErrandSchema)
def accept(args, errand_id):
    """受理：核对资格与材料，指派代办员。"""
    errand = service.accept(
        errand=_errand(errand_id),
        actor=g.user,
        agent_public_id=args["agent_id"],
        eligibility_note=args["eligibility_note"],
        materials=args["materials"],
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/assign")
@access.roles(*OVERSEERS)
@blp.arguments(ErrandAssignSchema)
@blp.response(200, ErrandSchema)
def assign(args, errand_id):
    """改派代办员。"""
    errand = service.assign(
        errand=_errand(errand_id),
        actor=g.user,
        agent_public_id=args["agent_id"],
        note=args["note"],
        cash_handed_over=args["cash_handed_over"],
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/record-info")
@INVOLVED
@blp.arguments(ErrandRecordInfoSchema)
@blp.response(200, ErrandSchema)
def record_info(args, errand_id):
    """登记办理所需的敏感个人信息：须先有本人的单独同意和授权委托；加密保存，回复中脱敏。"""
    return _commit_and_show(service.record_info(errand=_errand(errand_id), actor=g.user, values=args))


@blp.post("/errands/<string:errand_id>/request-materials")
@access.roles(*AGENT)
@blp.arguments(ErrandRequestMaterialsSchema)
@blp.response(200, ErrandSchema)
def request_materials(args, errand_id):
    """通知居民补材料：本步骤暂停计时，并定时提醒。"""
    errand = service.request_materials(
        errand=_errand(errand_id), actor=g.user, missing=args["missing"], note=args["note"]
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/collect")
@access.roles(*AGENT)
@blp.arguments(ErrandCollectSchema)
@blp.response(200, ErrandSchema)
def collect(args, errand_id):
    """收件：勾选收到的材料，填写双方签字的交接单；代购还须登记清单和收到的现金（分）。"""
    errand = service.collect(
        errand=_errand(errand_id),
        actor=g.user,
        materials=args["materials"],
        handover=args["handover"],
        items=args["items"],
        cash_received_fen=args["cash_received_fen"],
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/lodge")
@access.roles(*AGENT)
@blp.arguments(ErrandLodgeSchema)
@blp.response(200, ErrandSchema)
def lodge(args, errand_id):
    """递交：办理部门与回执号。"""
    errand = service.lodge(
        errand=_errand(errand_id),
        actor=g.user,
        office=args["office"],
        receipt_number=args["receipt_number"],
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/review")
@access.roles(*AGENT)
@blp.arguments(ErrandNoteSchema)
@blp.response(200, ErrandSchema)
def review(args, errand_id):
    """部门已开始审核。"""
    return _commit_and_show(service.review(errand=_errand(errand_id), actor=g.user, note=args["note"]))


@blp.post("/errands/<string:errand_id>/record-result")
@access.roles(*AGENT)
@blp.arguments(ErrandResultSchema)
@blp.response(200, ErrandSchema)
def record_result(args, errand_id):
    """登记结果：批准或不予批准；代购须钱款平衡（收到 = 实付 + 找零）并附票据照片。"""
    errand = service.record_result(
        errand=_errand(errand_id),
        actor=g.user,
        outcome=args["outcome"],
        note=args["note"],
        amount_fen=args["amount_fen"],
        certificate_number=args["certificate_number"],
        valid_until=args["valid_until"].isoformat() if args["valid_until"] else None,
        amount_spent_fen=args["amount_spent_fen"],
        change_returned_fen=args["change_returned_fen"],
        receipt_photo_id=args["receipt_photo_id"],
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/return-to-resident")
@access.roles(*AGENT)
@blp.arguments(ErrandNoteSchema)
@blp.response(200, ErrandSchema)
def return_to_resident(args, errand_id):
    """把结果和原件（代购的药品、找零、票据）送还居民。"""
    errand = service.return_to_resident(errand=_errand(errand_id), actor=g.user, note=args["note"])
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/complete")
@INVOLVED
@blp.arguments(ErrandNoteSchema)
@blp.response(200, ErrandSchema)
def complete(args, errand_id):
    """办结：居民确认收到结果（或代办员、书记代为确认）。"""
    return _commit_and_show(service.complete(errand=_errand(errand_id), actor=g.user, note=args["note"]))


@blp.post("/errands/<string:errand_id>/rate")
@OWN_ERRANDS
@blp.arguments(ErrandRateSchema)
@blp.response(200, ErrandSchema)
def rate(args, errand_id):
    """评价已办结的代办（每件一次）。"""
    errand = service.rate(
        errand=_errand(errand_id), actor=g.user, level=args["level"], comment=args["comment"]
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/supervise")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(SupervisionRaiseSchema)
@blp.response(201, SupervisionSchema)
@blp.doc(**idempotency.DOC)
def supervise(args, errand_id):
    """街道督办：本街道管理员写明事由，将代办列入督办（同一代办同时只有一条人工督办）。
    带 Idempotency-Key 重试得到同一条记录。"""
    errand = _errand(errand_id)
    # A key is this errand's: the same key on another errand is another request.
    return idempotency.create_once(
        f"errands/{errand.id}/supervise",
        Supervision,
        lambda: service.supervise(errand=errand, actor=g.user, reason=args["reason"]),
    )


@blp.post("/errands/<string:errand_id>/cancel")
@access.signed_in_as("own errands, or as the errand's community secretary or street admin")
@blp.arguments(ErrandCancelSchema)
@blp.response(200, ErrandSchema)
def cancel(args, errand_id):
    """取消（须说明理由）：居民本人，或社区代为取消；代购已收现金的，须登记退还的现金（分）。"""
    errand = service.cancel(
        errand=_errand(errand_id),
        actor=g.user,
        reason=args["reason"],
        at_resident_request=args["at_resident_request"],
        change_returned_fen=args["change_returned_fen"],
    )
    return _commit_and_show(errand)


@blp.post("/errands/<string:errand_id>/fail")
@access.roles(Role.PROXY_AGENT, *OVERSEERS)
@blp.arguments(ErrandCallOffSchema)
@blp.response(200, ErrandSchema)
def fail(args, errand_id):
    """办理失败（须说明理由）；代购已收现金的，须登记退还的现金（分）。"""
    errand = service.fail(
        errand=_errand(errand_id),
        actor=g.user,
        reason=args["reason"],
        change_returned_fen=args["change_returned_fen"],
    )
    return _commit_and_show(errand)
