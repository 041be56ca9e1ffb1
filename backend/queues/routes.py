from flask import current_app, g, make_response

from backend.auth import access
from backend.auth.roles import Role
from backend.extensions import Blueprint, get_redis
from backend.queues import dashboard, service
from backend.queues.schemas import (
    DashboardPassSchema,
    FailedJobPageSchema,
    FailedJobsQuerySchema,
    QueueOverviewSchema,
    RequeuedAllSchema,
    RequeuedSchema,
)

blp = Blueprint("queues", __name__, description="后台任务队列（街道管理员）")


@blp.get("/queues")
@access.roles(Role.STREET_ADMIN)
@blp.response(200, QueueOverviewSchema)
def overview():
    """各队列的排队、执行中、定时、等待依赖、失败任务数与在线执行进程数。"""
    return {"items": service.queue_stats(connection=get_redis())}


@blp.get("/queues/failed")
@access.roles(Role.STREET_ADMIN)
@blp.arguments(FailedJobsQuerySchema, location="query")
@blp.response(200, FailedJobPageSchema)
def list_failed(args):
    """重试用尽（或执行进程意外退出且无重试次数）的失败任务，最近失败的在前。"""
    return service.list_failed(connection=get_redis(), limit=args["limit"], cursor=args["cursor"])


@blp.post("/queues/failed/<string:job_id>/requeue")
@access.roles(Role.STREET_ADMIN)
@blp.response(200, RequeuedSchema)
def requeue(job_id):
    """将一个失败任务重新排队（操作人记入日志）。"""
    job = service.requeue_failed(connection=get_redis(), job_id=job_id, actor=g.principal)
    return {"job_id": job.id, "queue": job.origin, "status": "queued"}


@blp.post("/queues/failed/requeue-all")
@access.roles(Role.STREET_ADMIN)
@blp.response(200, RequeuedAllSchema)
def requeue_all():
    """将所有失败任务重新排队（操作人记入日志）。"""
    return {"requeued": service.requeue_all_failed(connection=get_redis(), actor=g.principal)}


@blp.post("/queues/dashboard-session")
@access.roles(Role.STREET_ADMIN)
@blp.response(200, DashboardPassSchema)
def dashboard_session():
    """进入队列看板：设置仅限 /admin/rq 使用的短期 Cookie，随登录会话注销而失效。"""
    ttl = dashboard.pass_ttl()
    token, expires_at = service.issue_dashboard_pass(principal=g.principal, ttl=ttl)
    body = DashboardPassSchema().dump({"url": dashboard.URL_PREFIX + "/", "expires_at": expires_at})
    response = make_response(body)
    response.set_cookie(
        dashboard.COOKIE_NAME,
        token,
        max_age=ttl,
        path=dashboard.URL_PREFIX,
        httponly=True,
        samesite="Strict",
        secure=current_app.config["IS_PRODUCTION"],
    )
    return response
