"""The one place that builds the wechatpy client; auth and notifications both use it.

wechatpy has no base-URL argument, so the client is subclassed to point every call (cgi-bin, sns, wxa) at
WECHAT_API_BASE_URL: WeChat's real host in production, the fake server in miniprogram_mock/ in tests and demo.
"""

import contextlib
import logging
import re

import redis
import requests
from flask import current_app, has_request_context, request
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

from backend.errors import ApiError, ServiceUnavailable

log = logging.getLogger(__name__)

PRODUCTION_BASE_URL = "https://api.weixin.qq.com/"


class FallbackRedisStorage(RedisStorage):
    """Caches the access token in Redis; with Redis down, keeps a per-process copy rather than fail."""

    def __init__(self, client, prefix="wechatpy", *, fallback: MemoryStorage | None = None):
        super().__init__(client, prefix)
        self._fallback = fallback if fallback is not None else MemoryStorage()

    def get(self, key, default=None):
        try:
            return super().get(key, default)
        except redis.RedisError:
            log.warning("redis unavailable; wechat token cache falls back to memory")
            return self._fallback.get(key, default)

    def set(self, key, value, ttl=None):
        self._fallback.set(key, value, ttl)
        try:
            super().set(key, value, ttl)
        except redis.RedisError:
            log.warning("redis unavailable; wechat token cached in memory only")

    def delete(self, key):
        self._fallback.delete(key)
        with contextlib.suppress(redis.RedisError):
            super().delete(key)


class _TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout: wechatpy passes its own to API calls, but fetches
    the access token (cgi-bin/token) without one, so a hanging WeChat would hold the caller for good."""

    def __init__(self, timeout):
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, **kwargs)


class SandanWeChatClient(WeChatClient):
    def __init__(self, appid, secret, *, base_url: str, session=None, timeout=None):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.API_BASE_URL = self.base_url + "cgi-bin/"
        super().__init__(appid, secret, session=session, timeout=timeout)
        self._http = _TimeoutSession(timeout)
        # The wxa API builds its own URLs ("sns/jscode2session", "cgi-bin/message/subscribe/send").
        self.wxa.API_BASE_URL = self.base_url

    # How deep in wechatpy's own "token refused → fetch a new one → call again" we are.
    _token_retry_depth = 0

    def _handle_result(self, res, method=None, url=None, result_processor=None, **kwargs):
        # wechatpy answers 40001/40014/42001 by fetching a token and calling again, without a bound: a
        # token WeChat keeps refusing would recurse until RecursionError. One refresh per call is enough;
        # a token refused again is raised as the WeChatClientException it is.
        outer_auto_retry = self.auto_retry
        if self._token_retry_depth:
            self.auto_retry = False
        self._token_retry_depth += 1
        try:
            return super()._handle_result(res, method, url, result_processor, **kwargs)
        finally:
            self._token_retry_depth -= 1
            self.auto_retry = outer_auto_retry

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.base_url + "cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def client() -> SandanWeChatClient:
    """Return a client for the current app, sharing the access-token cache through Redis."""
    from backend.extensions import get_redis

    cfg = current_app.config
    # The process's copy outlives each client: WeChat issues 2,000 tokens a day, and a client built per call
    # with a copy of its own would fetch one for every call while Redis is down.
    fallback = current_app.extensions.setdefault("sandan_wechat_token_fallback", MemoryStorage())
    return SandanWeChatClient(
        cfg["WECHAT_APPID"],
        cfg["WECHAT_SECRET"],
        base_url=cfg["WECHAT_API_BASE_URL"],
        session=FallbackRedisStorage(get_redis(), prefix="sandan:wechat", fallback=fallback),
        timeout=cfg["WECHAT_TIMEOUT"],
    )


# WeChat's error codes, as the API reports them to the mini-program.
ERRCODE_TO_API = {
    40029: (400, "wechat_code_invalid", "登录凭证无效，请重新登录"),
    40163: (400, "wechat_code_used", "登录凭证已被使用，请重新登录"),
    40226: (403, "wechat_user_blocked", "该微信账号存在风险，暂不能登录"),
    45011: (429, "wechat_rate_limited", "微信接口调用过于频繁，请稍后再试"),
    45009: (429, "wechat_quota_exceeded", "微信接口今日调用次数已达上限"),
    40001: (503, "wechat_credential_invalid", "微信接口凭证失效，请稍后再试"),
    40013: (503, "wechat_appid_invalid", "小程序配置有误，请联系管理员"),
    40125: (503, "wechat_secret_invalid", "小程序配置有误，请联系管理员"),
    -1: (503, "wechat_busy", "微信服务繁忙，请稍后再试"),
}
# getPhoneNumber's code refused: the person taps 获取手机号 again; their login stands.
PHONE_CODE_MESSAGES = {
    40029: "手机号授权已失效，请重新获取手机号",
    40163: "手机号授权已使用过，请重新获取手机号",
}


def call(fn, *args, **kwargs):
    """Call a wechatpy method, turning WeChat's failures into API errors (never a 500)."""
    return _call(fn, args, kwargs)


def _call(fn, args, kwargs, messages: dict[int, str] | None = None):
    """``call``, with ``messages`` in place of the usual words for some of WeChat's error codes."""
    try:
        result = fn(*args, **kwargs)
    except WeChatClientException as exc:
        if exc.errcode is None:  # an HTTP-level failure (5xx from WeChat)
            raise ServiceUnavailable("微信服务暂时不可用，请稍后再试", code="wechat_unavailable") from exc
        status, code, message = ERRCODE_TO_API.get(
            exc.errcode, (502, "wechat_error", "微信接口返回错误，请稍后再试")
        )
        message = (messages or {}).get(exc.errcode, message)
        raise ApiError(message, code=code, status=status, details={"errcode": exc.errcode}) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ServiceUnavailable("无法连接微信服务，请稍后再试", code="wechat_unreachable") from exc
    except requests.RequestException as exc:
        raise ServiceUnavailable("微信服务暂时不可用，请稍后再试", code="wechat_unavailable") from exc
    if isinstance(result, requests.Response):
        # wechatpy hands back the raw response when its body is not JSON (a proxy's page with status 200):
        # nothing WeChat said, so it is unavailable, as for a 5xx.
        log.warning("wechat answered %s without JSON", result.status_code)
        raise ServiceUnavailable("微信服务暂时不可用，请稍后再试", code="wechat_unavailable")
    return result


def exchange_code(code: str, fn, *args, messages: dict[int, str] | None = None, **kwargs):
    """``call`` for a one-time code (wx.login's, getPhoneNumber's), exchanged once per request; ``messages``
    word the code's refusals where the login's words (请重新登录) do not fit (PHONE_CODE_MESSAGES).

    WeChat refuses a spent code (40163), so a request that runs again (the embedded default's retry when
    SQLite is busy) must not send it twice: the run again gets the first run's answer."""
    if not has_request_context():
        return _call(fn, args, kwargs, messages)
    answers = request.environ.setdefault("sandan.wechat_codes", {})
    if code not in answers:
        answers[code] = _call(fn, args, kwargs, messages)
    return answers[code]


_QUERY = re.compile(r"\?[^\s'\"()]*")


def failure_text(exc: Exception) -> str:
    """What a failed call to WeChat says, fit to be stored: its URLs without their query strings, which
    carry the app's secret (token requests) or an access token (every other call)."""
    return _QUERY.sub("?…", f"{type(exc).__name__}: {exc}")
