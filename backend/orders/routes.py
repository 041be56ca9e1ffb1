"""The three-order API: /orders and one POST per state-machine action, named after it."""

from flask import g, jsonify

from backend import idempotency
from backend.auth import access
from backend.auth.roles import Role
from backend.community.service import get_grid, grid_scope, overseen_community_ids
from backend.db import db
from backend.errors import NotFound
from backend.extensions import Blueprint
from backend.orders import placing, recommend, service, stats, views
from backend.orders.models import Order
from backend.orders.schemas import (
    AcceptSchema,
    AssignSchema,
    BoardPageSchema,
    BoardQuerySchema,
    CandidateListSchema,
    DispatchSchema,
    ExtensionRequestSchema,
    NoteSchema,
    OrderCreateSchema,
    OrderListQuerySchema,
    OrderPageSchema,
    OrderSchema,
    RateSchema,
    RatingStatsListSchema,
    RatingStatsQuerySchema,
    ReasonSchema,
    ResolveSchema,
    TakeSchema,
)
from backend.organizations.service import get_organization
from backend.storage.routes import photo_response
from backend.storage.schemas import PhotoQuerySchema
from backend.supervision.models import Supervision
from backend.supervision.schemas import SupervisionRaiseSchema, SupervisionSchema

blp = Blueprint("orders", __name__, description="三单：居民点单、社区派单、组织接单")
# The lists build their JSON by hand (orders.views.summary) and return it as a response, which flask-smorest
# passes through: their schemas document it, and tests hold the two equal.

PLACERS = (Role.RESIDENT, Role.GRID_WORKER, Role.SECRETARY)
# Actions are checked against the order's state and the caller's standing by the service (409/404); the
# route declares who may call at all.
OVERSEERS = (Role.SECRETARY, Role.STREET_ADMIN)
DOERS = (Role.ORG_ADMIN, Role.VOLUNTEER)
# A resident's own orders stay theirs whatever roles they hold now (one who moved away holds none): owning
# the order (its resident_id) entitles them, which the service checks (caller_for), not a residence.
OWN_ORDERS = access.signed_in_as("own orders only")


def _show(order: Order, status: int = 200):
    """The order as the caller may see it; its JSON built by views.document (OrderSchema documents it)."""
    return jsonify(views.document(views.with_view(order, g.principal))), status


def _order(order_id: str) -> Order:
    return service.get_order(order_id, viewer=g.principal)


def _acted_on(order_id: str) -> Order:
    """The order an action names: an organization it was once offered to gets the state machine's 409
    (taken by another, say) rather than a 404, though it may no longer read the order."""
    return service.get_order(order_id, viewer=g.principal, to_act=True)


def _commit_and_show(order: Order):
    db.session.commit()
    return _show(order)


@blp.post("/orders")
@access.roles(*PLACERS, refusal=placing.no_residence)
@blp.arguments(OrderCreateSchema)
@blp.response(201, OrderSchema)
@blp.doc(**idempotency.DOC)
def place_order(args):
    """点单：居民为自己点单，或网格员/书记为居民代录。带 Idempotency-Key 重试不会重复下单。"""
    placed = idempotency.create_once(
        "orders",
        Order,
        lambda claim: placing.place_order(
            actor=g.principal,
            category_code=args["category"],
            description=args["description"],
            answers=args["answers"],
            address=args["address"],
            grid_public_id=args["grid_id"],
            resident_public_id=args["resident_id"],
            latitude=args["latitude"],
            longitude=args["longitude"],
            preferred_start=args["preferred_start"],
            preferred_end=args["preferred_end"],
            contact_name=args["contact_name"],
            contact_phone=args["contact_phone"],
            photo_ids=args["photo_ids"],
            claim=claim,
        ),
        records_key=True,
    )
    if isinstance(placed, Order):  # a retry: the order the first request placed
        return _show(placed, 201)
    return jsonify(views.document(placed.order)), 201


@blp.get("/orders")
@OWN_ORDERS
@blp.arguments(OrderListQuerySchema, location="query")
@blp.response(200, OrderPageSchema)
def my_orders(args):
    """我的工单：本人点的（或为本人代录的），新的在前；搬离后也仍可查看。"""
    page = views.my_orders(
        resident=g.principal, state=args["state"], limit=args["limit"], cursor=args["cursor"]
    )
    return jsonify(page)


@blp.get("/orders/board")
@access.roles(*OVERSEERS)
@blp.arguments(BoardQuerySchema, location="query")
@blp.response(200, BoardPageSchema)
def dispatch_board(args):
    """派单台：本社区需要处理的工单，紧急在前、时限近在前；附各状态数量（所选社区全部工单的数量，不随筛选条件变化，用作各状态页签上的数字）。"""
    board = views.dispatch_board(
        viewer=g.principal,
        community_public_id=args["community_id"],
        service_kind=args["service_kind"],
        category=args["category"],
        grid_public_id=args["grid_id"],
        state=args["state"],
        overdue=args["overdue"],
        supervised=args["supervised"],
        needs_action=args["needs_action"],
        number=args["number"],
        limit=args["limit"],
        cursor=args["cursor"],
    )
    return jsonify(board)


@blp.get("/grids/<string:grid_id>/orders")
@access.roles(Role.GRID_WORKER, *OVERSEERS, scope=grid_scope())
@blp.arguments(OrderListQuerySchema, location="query")
@blp.response(200, OrderPageSchema)
def grid_orders(args, grid_id):
    """本网格的工单（网格员、社区书记、街道管理员），新的在前：含代录的和居民自己点的。"""
    page = views.grid_orders(
        grid_id=get_grid(grid_id).id, state=args["state"], limit=args["limit"], cursor=args["cursor"]
    )
    return jsonify(page)


@blp.get("/organizations/<string:organization_id>/orders")
@access.roles(Role.ORG_ADMIN)
@blp.arguments(OrderListQuerySchema, location="query")
@blp.response(200, OrderPageSchema)
def organization_orders(args, organization_id):
    """本组织的工单：待接单的和在办的。"""
    page = views.organization_board(
        viewer=g.principal,
        organization=get_organization(organization_id),
        state=args["state"],
        limit=args["limit"],
        cursor=args["cursor"],
    )
    return jsonify(page)


@blp.get("/me/assignments")
@access.roles(Role.VOLUNTEER)
@blp.arguments(OrderListQuerySchema, location="query")
@blp.response(200, OrderPageSchema)
def my_assignments(args):
    """指派给我的工单（志愿者）。"""
    page = views.volunteer_board(
        viewer=g.principal, state=args["state"], limit=args["limit"], cursor=args["cursor"]
    )
    return jsonify(page)


@blp.get("/orders/stats")
@access.roles(*OVERSEERS)
@blp.arguments(RatingStatsQuerySchema, location="query")
@blp.response(200, RatingStatsListSchema)
def order_stats(args):
    """满意率、响应率、解决率，按社会组织或社区统计（书记看本社区，街道看全街道）。"""
    return {
        "group_by": args["group_by"],
        "items": stats.rating_stats(
            group_by=args["group_by"],
            community_ids=overseen_community_ids(g.principal),
            since=args["since"],
            until=args["until"],
        ),
    }


@blp.get("/orders/<string:order_id>")
@access.signed_in
@blp.response(200, OrderSchema)
def get_order(order_id):
    """工单详情与时间线；联系方式按查看者的身份脱敏。"""
    return _show(_order(order_id))


@blp.get("/orders/<string:order_id>/recommendations")
@access.roles(*OVERSEERS)
@blp.response(200, CandidateListSchema)
def recommendations(order_id):
    """可承接该工单的社会组织，按得分排序并说明理由。"""
    order = service.get_order_facts(order_id, viewer=g.principal)
    if not service.caller_for(order, g.principal).actors & {"secretary", "street_admin"}:
        raise NotFound("工单不存在")
    return {"items": recommend.recommend(order)}


def _photo(order_id: str, upload_id: str, size: str, *, proof: bool):
    order = _order(order_id)
    for upload in service.photos(order, proof=proof):
        if upload.public_id == upload_id:
            return photo_response(upload, size)
    raise NotFound("图片不存在")


@blp.get("/orders/<string:order_id>/photos/<string:upload_id>")
@access.signed_in
@blp.arguments(PhotoQuerySchema, location="query")
@blp.response(200, content_type="image/*")
def order_photo(args, order_id, upload_id):
    """工单照片。"""
    return _photo(order_id, upload_id, args["size"], proof=False)


@blp.get("/orders/<string:order_id>/proof/<string:upload_id>")
@access.signed_in
@blp.arguments(PhotoQuerySchema, location="query")
@blp.response(200, content_type="image/*")
def proof_photo(args, order_id, upload_id):
    """回单凭证照片。"""
    return _photo(order_id, upload_id, args["size"], proof=True)


# One POST per action.


@blp.post("/orders/<string:order_id>/accept")
@access.roles(*OVERSEERS)
@blp.arguments(AcceptSchema)
@blp.response(200, OrderSchema)
def accept(args, order_id):
    """受理（可调整服务类型）。"""
    order = service.accept(
        order=_acted_on(order_id), actor=g.principal, service_kind=args["service_kind"], note=args["note"]
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/reject")
@access.roles(*OVERSEERS)
@blp.arguments(ReasonSchema)
@blp.response(200, OrderSchema)
def reject(args, order_id):
    """驳回（须说明理由）。"""
    return _commit_and_show(
        service.reject(order=_acted_on(order_id), actor=g.principal, reason=args["reason"])
    )


@blp.post("/orders/<string:order_id>/dispatch")
@access.roles(*OVERSEERS)
@blp.arguments(DispatchSchema)
@blp.response(200, OrderSchema)
def dispatch(args, order_id):
    """派单：派给一个组织，或放入抢单池由多个组织抢单。"""
    order = _acted_on(order_id)
    organization_ids = service.organizations_by_public_id(args["organization_ids"])
    order = service.dispatch(
        order=order,
        actor=g.principal,
        organization_ids=organization_ids,
        pool=args["pool"],
        note=args["note"],
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/redispatch")
@access.roles(*OVERSEERS)
@blp.arguments(DispatchSchema)
@blp.response(200, OrderSchema)
def redispatch(args, order_id):
    """改派：已派出但未被接单的工单，改派给其他组织或抢单池。"""
    order = _acted_on(order_id)
    organization_ids = service.organizations_by_public_id(args["organization_ids"])
    order = service.dispatch(
        order=order,
        actor=g.principal,
        organization_ids=organization_ids,
        pool=args["pool"],
        note=args["note"],
        action="redispatch",
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/take")
@access.roles(Role.ORG_ADMIN)
@blp.arguments(TakeSchema)
@blp.response(200, OrderSchema)
def take(args, order_id):
    """接单（签收）；抢单池中先接者得，其余返回 409。"""
    order = _acted_on(order_id)
    organization_id = get_organization(args["organization_id"]).id if args["organization_id"] else None
    return _commit_and_show(service.take(order=order, actor=g.principal, organization_id=organization_id))


@blp.post("/orders/<string:order_id>/return")
@access.roles(Role.ORG_ADMIN)
@blp.arguments(ReasonSchema)
@blp.response(200, OrderSchema)
def return_order(args, order_id):
    """退单（须说明理由，且在派单后规定时间内）。"""
    return _commit_and_show(
        service.return_order(order=_acted_on(order_id), actor=g.principal, reason=args["reason"])
    )


@blp.post("/orders/<string:order_id>/assign")
@access.roles(Role.ORG_ADMIN)
@blp.arguments(AssignSchema)
@blp.response(200, OrderSchema)
def assign(args, order_id):
    """指派本组织的志愿者。"""
    order = service.assign(
        order=_acted_on(order_id), actor=g.principal, volunteer_public_ids=args["volunteer_ids"]
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/start")
@access.roles(*DOERS)
@blp.arguments(NoteSchema)
@blp.response(200, OrderSchema)
def start(args, order_id):
    """开始办理。"""
    return _commit_and_show(service.start(order=_acted_on(order_id), actor=g.principal, note=args["note"]))


@blp.post("/orders/<string:order_id>/suspend")
@access.roles(*DOERS)
@blp.arguments(ReasonSchema)
@blp.response(200, OrderSchema)
def suspend(args, order_id):
    """暂停：等待居民补充，办结时限暂停计时。"""
    return _commit_and_show(
        service.suspend(order=_acted_on(order_id), actor=g.principal, reason=args["reason"])
    )


@blp.post("/orders/<string:order_id>/resume")
@access.roles(*DOERS)
@blp.arguments(NoteSchema)
@blp.response(200, OrderSchema)
def resume(args, order_id):
    """继续办理，办结时限顺延暂停的时间。"""
    return _commit_and_show(service.resume(order=_acted_on(order_id), actor=g.principal, note=args["note"]))


@blp.post("/orders/<string:order_id>/request-extension")
@access.roles(Role.ORG_ADMIN)
@blp.arguments(ExtensionRequestSchema)
@blp.response(200, OrderSchema)
def request_extension(args, order_id):
    """申请延期（每单一次，不超过政策允许的时长）。"""
    order = service.request_extension(
        order=_acted_on(order_id),
        actor=g.principal,
        amount=args["amount"],
        unit=args["unit"],
        reason=args["reason"],
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/approve-extension")
@access.roles(*OVERSEERS)
@blp.arguments(NoteSchema)
@blp.response(200, OrderSchema)
def approve_extension(args, order_id):
    """批准延期申请：办结时限顺延。"""
    order = service.decide_extension(
        order=_acted_on(order_id), actor=g.principal, approve=True, note=args["note"]
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/deny-extension")
@access.roles(*OVERSEERS)
@blp.arguments(NoteSchema)
@blp.response(200, OrderSchema)
def deny_extension(args, order_id):
    """不批准延期申请。"""
    order = service.decide_extension(
        order=_acted_on(order_id), actor=g.principal, approve=False, note=args["note"]
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/resolve")
@access.roles(*DOERS)
@blp.arguments(ResolveSchema)
@blp.response(200, OrderSchema)
def resolve(args, order_id):
    """回单：写明办理情况，附凭证照片。"""
    order = service.resolve(
        order=_acted_on(order_id), actor=g.principal, note=args["note"], proof_ids=args["proof_ids"]
    )
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/confirm")
@OWN_ORDERS
@blp.arguments(RateSchema)
@blp.response(200, OrderSchema)
def confirm(args, order_id):
    """确认办结并评价。"""
    order = service.confirm(order=_acted_on(order_id), actor=g.principal, **args)
    return _commit_and_show(order)


@blp.post("/orders/<string:order_id>/rate")
@OWN_ORDERS
@blp.arguments(RateSchema)
@blp.response(200, OrderSchema)
def rate(args, order_id):
    """评价已自动办结的工单（每单一次）。"""
    return _commit_and_show(service.rate(order=_acted_on(order_id), actor=g.principal, **args))


@blp.post("/orders/<string:order_id>/reopen")
@OWN_ORDERS
@blp.arguments(ReasonSchema)
@blp.response(200, OrderSchema)
def reopen(args, order_id):
    """对办理结果有异议，回单 7 天内申请重办。"""
    return _commit_and_show(
        service.reopen(order=_acted_on(order_id), actor=g.principal, reason=args["reason"])
    )


@blp.post("/orders/<string:order_id>/supervise")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(SupervisionRaiseSchema)
@blp.response(201, SupervisionSchema)
@blp.doc(**idempotency.DOC)
def supervise(args, order_id):
    """街道督办：本街道管理员写明事由，将工单列入督办（同一工单同时只有一条人工督办）。
    带 Idempotency-Key 重试得到同一条记录。"""
    order = _order(order_id)
    # A key is this order's: the same key on another order is another request.
    return idempotency.create_once(
        f"orders/{order.id}/supervise",
        Supervision,
        lambda: service.supervise(order=order, actor=g.principal, reason=args["reason"]),
    )


@blp.post("/orders/<string:order_id>/cancel")
@access.signed_in_as("own orders, or as the order's community secretary or street admin")
@blp.arguments(ReasonSchema)
@blp.response(200, OrderSchema)
def cancel(args, order_id):
    """取消：居民在组织接单前可取消；接单后由社区取消。"""
    return _commit_and_show(
        service.cancel(order=_acted_on(order_id), actor=g.principal, reason=args["reason"])
    )
