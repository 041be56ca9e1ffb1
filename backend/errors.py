"""One error shape for the whole API: ``{code, message, details}`` with the right status."""

import logging

import marshmallow as ma
from flask import Flask, jsonify, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API reports to its caller; raised by services and routes alike."""

    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(self, message: str | None = None, *, code: str | None = None, details=None, status=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        if status is not None:
            self.status = status


class Unauthorized(ApiError):
    status, code, message = 401, "unauthorized", "请先登录"


class Forbidden(ApiError):
    status, code, message = 403, "forbidden", "无权进行此操作"


class NotFound(ApiError):
    status, code, message = 404, "not_found", "未找到该资源"


class Conflict(ApiError):
    status, code, message = 409, "conflict", "与当前状态冲突"


class ValidationFailed(ApiError):
    status, code, message = 422, "validation_failed", "提交的内容有误"


class ServiceUnavailable(ApiError):
    status, code, message = 503, "service_unavailable", "服务暂时不可用，请稍后再试"


class ErrorSchema(ma.Schema):
    """The body of every error response."""

    code = ma.fields.String(required=True, metadata={"description": "stable snake_case word for programs"})
    message = ma.fields.String(required=True, metadata={"description": "Chinese text for people"})
    details = ma.fields.Raw(allow_none=True, metadata={"description": "per-field messages, or context"})


_HTTP_ERRORS = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "无权进行此操作"),
    404: ("not_found", "未找到该资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    406: ("not_acceptable", "无法提供所请求的格式"),
    409: ("conflict", "与当前状态冲突"),
    413: ("payload_too_large", "提交的内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    422: ("validation_failed", "提交的内容有误"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试"),
}


def _flatten_webargs(messages: dict) -> dict:
    """webargs nests messages under the location ("json", "query"); callers want field names."""
    flat: dict = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def error_response(status: int, code: str, message: str, details=None, headers=None):
    response = jsonify({"code": code, "message": message, "details": details})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def http_exception_response(error: HTTPException):
    """Render any werkzeug/flask-smorest HTTP error in the API's shape."""
    status = error.code or 500
    code, message = _HTTP_ERRORS.get(status, ("http_error", error.name))
    details = None
    data = getattr(error, "data", None) or {}
    if "messages" in data:
        details = _flatten_webargs(data["messages"])
        if status == 400:
            code, message = "invalid_body", "请求内容不是合法的 JSON"
    headers = dict(data.get("headers") or {})
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    if status >= 500:
        code, message = "internal_error", "服务器内部错误"
    return error_response(status, code, message, details, headers)


# deadlock_detected, serialization_failure
LOST_RACE_SQLSTATES = frozenset({"40P01", "40001"})


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.details)

    app.register_error_handler(HTTPException, http_exception_response)

    @app.errorhandler(StaleDataError)
    def _lost_race(error: StaleDataError):
        # Two writes to one row at once and the version check refused the stale one: the loser reloads.
        from backend.db import db

        db.session.rollback()
        return error_response(409, "concurrent_change", "刚被他人处理，请刷新后再试")

    @app.errorhandler(OperationalError)
    def _database_busy(error: OperationalError):
        lost_race = getattr(error.orig, "sqlstate", None) in LOST_RACE_SQLSTATES
        if not lost_race and "database is locked" not in str(error):
            return _unexpected(error)
        from backend.db import db

        db.session.rollback()
        if lost_race:
            # PostgreSQL broke a deadlock, or refused a serializable transaction, by rolling this one back:
            # two people acted on the same things at once, and the other got there.
            return error_response(409, "concurrent_change", "刚被他人处理，请刷新后再试")
        return error_response(503, "database_busy", "系统繁忙，请稍后再试", headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # What a person reports ("it failed when I ...") is found by its time, method and path.
        log.exception("unhandled error: %s %s", request.method, request.path)
        return error_response(500, "internal_error", "服务器内部错误")
