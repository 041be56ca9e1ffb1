import marshmallow as ma

from backend.fields import LocalDateTime
from backend.pagination import MAX_LIMIT, page_schema

QUEUE_LABELS = {"high": "高优先级", "default": "普通", "low": "低优先级"}


class QueueStatsSchema(ma.Schema):
    name = ma.fields.String(dump_only=True, metadata={"description": "high | default | low"})
    label = ma.fields.Function(lambda q: QUEUE_LABELS.get(q["name"], q["name"]), dump_only=True)
    queued = ma.fields.Integer(dump_only=True, metadata={"description": "排队等待执行"})
    started = ma.fields.Integer(dump_only=True, metadata={"description": "执行中"})
    scheduled = ma.fields.Integer(dump_only=True, metadata={"description": "定时或等待重试"})
    deferred = ma.fields.Integer(dump_only=True, metadata={"description": "等待所依赖的任务"})
    failed = ma.fields.Integer(dump_only=True, metadata={"description": "重试用尽后失败"})
    workers = ma.fields.Integer(dump_only=True, metadata={"description": "在线的执行进程数"})


class QueueOverviewSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(QueueStatsSchema), required=True)


class FailedJobsQuerySchema(ma.Schema):
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_LIMIT))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=512))


class RequeueMarkSchema(ma.Schema):
    user_id = ma.fields.String(dump_only=True)
    at = ma.fields.String(dump_only=True)


class FailedJobSchema(ma.Schema):
    job_id = ma.fields.String(dump_only=True)
    queue = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True, allow_none=True)
    function = ma.fields.String(dump_only=True, allow_none=True)
    outbox_message_id = ma.fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "任务来自 outbox 时的消息编号"}
    )
    job_name = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "outbox 消息的任务名"}
    )
    traceback = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "错误堆栈的最后几行"}
    )
    failed_at = LocalDateTime(dump_only=True)
    retries_left = ma.fields.Integer(dump_only=True)
    requeued_by = ma.fields.List(
        ma.fields.Nested(RequeueMarkSchema), dump_only=True, metadata={"description": "此前重新排队的记录"}
    )


FailedJobPageSchema = page_schema(FailedJobSchema, "FailedJobPage")


class RequeuedSchema(ma.Schema):
    job_id = ma.fields.String(dump_only=True)
    queue = ma.fields.String(dump_only=True)
    status = ma.fields.String(dump_only=True)


class RequeuedAllSchema(ma.Schema):
    requeued = ma.fields.Integer(dump_only=True)


class DashboardPassSchema(ma.Schema):
    url = ma.fields.String(dump_only=True, metadata={"description": "队列看板地址（凭 Cookie 访问）"})
    expires_at = LocalDateTime(dump_only=True)
