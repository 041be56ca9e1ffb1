"""A fake of the WeChat server API the backend calls, plus /_mock/ endpoints to steer it."""

# Run it with `python -m miniprogram_mock.fake_wechat`, or in tests with `FakeWeChatServer().start()`.

import argparse
import base64
import copy
import functools
import itertools
import json
import re
import secrets
import signal
import string
import threading
import time
from collections import deque
from dataclasses import dataclass

from flask import Flask, Response, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

ENDPOINTS = ("token", "jscode2session", "getuserphonenumber", "subscribe_send")

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "high risk user",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43002: "require POST method",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid!",
}

# The phone-side endpoints a browser page (the demo's clickable mock) may call from another origin.
CORS_PATHS = frozenset({"/_mock/login-code", "/_mock/phone-code"})

# WeChat keeps the previous access_token working for 5 minutes after a new one is fetched, then
# rejects it as "not latest": processes that each fetch their own token knock each other out.
TOKEN_OVERLAP = 300

_CODE_ALPHABET = string.ascii_letters + string.digits

# What WeChat accepts as a subscribe message's value, by its keyword's kind (thing1 → thing): the
# "订阅消息参数值内容限制" table of subscribeMessage.send. A value breaking its rule fails the whole message
# with 47003, "argument invalid! data.<key>.value invalid".
_KEYWORD = re.compile(
    r"^(thing|character_string|phrase|time|date|number|letter|symbol|amount|name|phone_number|car_number)"
    r"[0-9]+$"
)
_HAN = r"\u3400-\u4dbf\u4e00-\u9fff"
_VALUE_RULES = {
    "thing": re.compile(r"^.{1,20}$", re.S),  # 20 characters: Chinese, digits, letters or symbols
    "phrase": re.compile(rf"^[{_HAN}]{{1,5}}$"),  # 5 Chinese characters, nothing else
    "character_string": re.compile(r"^[\x21-\x7e]{1,32}$"),  # 32 digits, letters or symbols
    "number": re.compile(r"^(?=.{1,32}$)[0-9]+(\.[0-9]+)?$"),  # digits, with a decimal point
    "letter": re.compile(r"^[A-Za-z]{1,32}$"),
    "symbol": re.compile(r"^[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]{1,5}$"),
    "amount": re.compile(r"^[¥￥$€£]?[0-9]{1,10}(\.[0-9]+)?元?$"),  # a currency sign, 10 digits, 元
    "phone_number": re.compile(r"^[0-9+\-() ]{1,17}$"),
    "car_number": re.compile(rf"^[{_HAN}A-Za-z0-9][A-Za-z0-9]{{0,6}}[{_HAN}A-Za-z0-9]?$"),
    # 10 characters with any Chinese in them, else 20 letters or symbols
    "name": re.compile(rf"^(?:(?=.*[{_HAN}]).{{1,10}}|[^{_HAN}]{{1,20}})$", re.S),
    "time": re.compile(r"^.{1,40}$", re.S),
    "date": re.compile(r"^.{1,40}$", re.S),
}


def value_problem(key: str, value) -> str | None:
    """Why WeChat would refuse this value for this keyword (its errmsg), or None when it takes it."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"argument invalid! data.{key}.value invalid"
    text = str(value)
    if not text.strip():
        return f"argument invalid! data.{key}.value is empty"
    kind = _KEYWORD.match(key)
    if kind is not None and not _VALUE_RULES[kind.group(1)].match(text):
        return f"argument invalid! data.{key}.value invalid"
    return None


class WeChatError(Exception):
    """A WeChat error answer: {"errcode": ..., "errmsg": ...}."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else ERRMSG.get(errcode, "mock error")


@dataclass
class _Fault:
    errcode: int | None
    remaining: int
    delay: float
    http_status: int | None


@dataclass
class _Code:
    openid: str
    unionid: str | None
    expires_at: float
    used: bool = False


@dataclass
class _PhoneCode:
    phone: str
    expires_at: float
    used: bool = False


@dataclass
class _Token:
    expires_at: float
    invalid_after: float | None = None


def _new_openid() -> str:
    return "o" + secrets.token_urlsafe(21)[:27]


def _new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(32))


def _split_phone(phone: str) -> tuple[str, str]:
    """Return (countryCode, purePhoneNumber) for "13800138000", "+86 13800138000" or "+852 61234567"."""
    phone = phone.strip()
    if not phone.startswith("+"):
        return "86", phone
    country, space, rest = phone[1:].partition(" ")
    if space:
        return country, rest.replace(" ", "")
    if phone.startswith("+86"):
        return "86", phone[3:]
    raise ValueError("write a non-Chinese number as '+<country code> <number>'")


class FakeWeChatState:
    """Everything the fake server remembers; safe to use from the server's threads and the test at once."""

    def __init__(
        self,
        appid: str = "wx-sandan-dev",
        secret: str = "dev-wechat-secret",
        code_ttl: float = 300,
        token_ttl: float = 7200,
    ):
        self.appid = appid
        self.secret = secret
        self.code_ttl = code_ttl
        self.token_ttl = token_ttl
        self._lock = threading.RLock()
        # msgids stay unique across reset() so a backend that stored one never sees it reused.
        self._msgids = itertools.count(2_000_000_000_000_000_001)
        self.reset()

    def reset(self) -> None:
        """Forget every code, token, message, refusal, fault and call count (the config stays)."""
        with self._lock:
            self._codes: dict[str, _Code] = {}
            self._unionids: dict[str, str] = {}
            self._phone_codes: dict[str, _PhoneCode] = {}
            self._tokens: dict[str, _Token] = {}
            self._messages: list[dict] = []
            self._refusals: set[tuple[str, str]] = set()
            self._faults: dict[str, deque[_Fault]] = {name: deque() for name in ENDPOINTS}
            self._calls: dict[str, int] = dict.fromkeys(ENDPOINTS, 0)

    # --- what tests and the /_mock/ endpoints drive -------------------------------------------------

    def issue_login_code(self, openid: str | None = None, unionid: str | None = None) -> tuple[str, str]:
        """Issue a wx.login code for openid (a new random user if None); return (code, openid)."""
        with self._lock:
            openid = openid or _new_openid()
            # A user's unionid never changes, so a later wx.login without one still carries it.
            if unionid:
                self._unionids[openid] = unionid
            code = _new_code()
            self._codes[code] = _Code(openid, self._unionids.get(openid), time.time() + self.code_ttl)
            return code, openid

    def issue_phone_code(self, phone: str) -> str:
        """Issue the code getPhoneNumber would hand the mini-program for this phone number."""
        if not phone:
            raise ValueError("phone is required")
        _split_phone(phone)
        with self._lock:
            code = secrets.token_hex(32)
            self._phone_codes[code] = _PhoneCode(phone, time.time() + self.code_ttl)
            return code

    def messages(self, touser: str | None = None) -> list[dict]:
        """Subscribe messages sent so far, oldest first, optionally only those to one openid."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages if touser is None or m["touser"] == touser]

    def inject_fault(
        self,
        endpoint: str,
        errcode: int | None = None,
        count: int = 1,
        delay: float = 0.0,
        http_status: int | None = None,
    ) -> None:
        """Make the next `count` calls of endpoint fail with errcode or http_status, and/or answer late."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if errcode is not None and http_status is not None:
            raise ValueError("give errcode or http_status, not both")
        if errcode is None and http_status is None and not delay:
            raise ValueError("a fault needs errcode, http_status or delay")
        if count < 1 or delay < 0:
            raise ValueError("count must be >= 1 and delay >= 0")
        with self._lock:
            self._faults[endpoint].append(_Fault(errcode, int(count), float(delay), http_status))

    def expire_tokens(self) -> int:
        """Invalidate every access token issued so far (WeChat answers 40001); return how many."""
        with self._lock:
            for token in self._tokens.values():
                token.invalid_after = float("-inf")
            return len(self._tokens)

    def refuse(self, openid: str, template_id: str) -> None:
        """Record that this user refused (or never accepted) messages of this template."""
        with self._lock:
            self._refusals.add((openid, template_id))

    def calls(self, endpoint: str) -> int:
        """How many times endpoint was called, failed calls included."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._lock:
            return self._calls[endpoint]

    def stats(self) -> dict[str, int]:
        """Call counts of every endpoint."""
        with self._lock:
            return dict(self._calls)

    # --- the WeChat API itself ----------------------------------------------------------------------

    def begin_call(self, endpoint: str) -> _Fault | None:
        """Count a call of endpoint and take the fault queued for it, if any."""
        with self._lock:
            self._calls[endpoint] += 1
            queue = self._faults[endpoint]
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault

    def _check_app(self, appid: str | None, secret: str | None) -> None:
        if not appid:
            raise WeChatError(41002)
        if appid != self.appid:
            raise WeChatError(40013)
        if not secret:
            raise WeChatError(41004)
        if secret != self.secret:
            raise WeChatError(40125)

    def check_token(self, access_token: str | None) -> None:
        """Raise the WeChatError WeChat gives for a missing, unknown, superseded or expired token."""
        if not access_token:
            raise WeChatError(41001)
        now = time.time()
        with self._lock:
            token = self._tokens.get(access_token)
            if token is None or (token.invalid_after is not None and now >= token.invalid_after):
                raise WeChatError(40001)
            if now >= token.expires_at:
                raise WeChatError(42001)

    def token(self, grant_type: str | None, appid: str | None, secret: str | None) -> dict:
        """GET /cgi-bin/token."""
        if grant_type != "client_credential":
            raise WeChatError(40002)
        self._check_app(appid, secret)
        now = time.time()
        with self._lock:
            for old in self._tokens.values():
                cutoff = now + TOKEN_OVERLAP
                if old.invalid_after is None or old.invalid_after > cutoff:
                    old.invalid_after = cutoff
            access_token = secrets.token_urlsafe(48)
            self._tokens[access_token] = _Token(now + self.token_ttl)
        return {"access_token": access_token, "expires_in": int(self.token_ttl)}

    def code2session(
        self, appid: str | None, secret: str | None, js_code: str | None, grant_type: str | None
    ) -> dict:
        """GET /sns/jscode2session."""
        self._check_app(appid, secret)
        if grant_type != "authorization_code":
            raise WeChatError(40002)
        if not js_code:
            raise WeChatError(41008)
        with self._lock:
            code = self._codes.get(js_code)
            if code is None:
                raise WeChatError(40029)
            if code.used:
                raise WeChatError(40163)
            if time.time() >= code.expires_at:
                raise WeChatError(40029)
            code.used = True
        result = {"openid": code.openid, "session_key": base64.b64encode(secrets.token_bytes(16)).decode()}
        if code.unionid:
            result["unionid"] = code.unionid
        return result

    def phone_number(self, access_token: str | None, body: dict) -> dict:
        """POST /wxa/business/getuserphonenumber."""
        self.check_token(access_token)
        phone_code = body.get("code")
        if not phone_code or not isinstance(phone_code, str):
            raise WeChatError(41008)
        with self._lock:
            entry = self._phone_codes.get(phone_code)
            if entry is None:
                raise WeChatError(40029)
            if entry.used:
                raise WeChatError(40163)
            if time.time() >= entry.expires_at:
                raise WeChatError(40029)
            entry.used = True
        country, pure = _split_phone(entry.phone)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": pure if country == "86" else f"+{country} {pure}",
                "purePhoneNumber": pure,
                "countryCode": country,
                "watermark": {"timestamp": int(time.time()), "appid": self.appid},
            },
        }

    def send_subscribe(self, access_token: str | None, body: dict) -> dict:
        """POST /cgi-bin/message/subscribe/send."""
        self.check_token(access_token)
        touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
        if not touser or not isinstance(touser, str):
            raise WeChatError(40003)
        if not template_id or not isinstance(template_id, str):
            raise WeChatError(40037)
        if not isinstance(data, dict) or not data:
            raise WeChatError(47003, "argument invalid! data is empty")
        for key, item in data.items():
            if not isinstance(item, dict) or "value" not in item:
                raise WeChatError(47003, f"argument invalid! data.{key}.value is empty")
            problem = value_problem(key, item["value"])
            if problem is not None:
                raise WeChatError(47003, problem)
        with self._lock:
            if (touser, template_id) in self._refusals:
                raise WeChatError(43101)
            msgid = next(self._msgids)
            self._messages.append(
                {
                    "touser": touser,
                    "template_id": template_id,
                    "page": body.get("page"),
                    "data": copy.deepcopy(data),
                    "msgid": msgid,
                    "sent_at": time.time(),
                }
            )
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}


def _error_json(exc: WeChatError) -> Response:
    return jsonify({"errcode": exc.errcode, "errmsg": exc.errmsg})


def _json_body(*, required: bool = True) -> dict:
    # wechatpy posts JSON bytes without a Content-Type, so the body is parsed by hand like WeChat does.
    raw = request.get_data()
    if not raw:
        if required:
            raise WeChatError(47001)
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise WeChatError(47001, "data format error hint") from None
    if not isinstance(body, dict):
        raise WeChatError(47001)
    return body


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


def _bad_request(message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), 400


def create_app(state: FakeWeChatState | None = None) -> Flask:
    """Build the Flask app answering like api.weixin.qq.com, plus the /_mock/ control endpoints."""
    state = state if state is not None else FakeWeChatState()
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.extensions["fake_wechat"] = state

    @app.after_request
    def allow_the_demo_page(response: Response) -> Response:
        # On a phone, wx.login is the WeChat client's own call; the browser mock of the mini-program
        # (served by `sandan demo` on another port) asks for its code here instead, so these two
        # "what the phone's WeChat does" endpoints answer cross-origin requests, preflight included.
        if request.path in CORS_PATHS:
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    def wechat_endpoint(endpoint: str, *, post: bool = False):
        def decorator(view):
            @functools.wraps(view)
            def wrapper():
                fault = state.begin_call(endpoint)
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.http_status is not None:
                        return Response(
                            f"<html><body><h1>{fault.http_status}</h1>mock fault</body></html>",
                            status=fault.http_status,
                            mimetype="text/html",
                        )
                    if fault.errcode is not None:
                        return _error_json(WeChatError(fault.errcode))
                try:
                    if post and request.method != "POST":
                        raise WeChatError(43002)
                    return jsonify(view())
                except WeChatError as exc:
                    return _error_json(exc)

            return wrapper

        return decorator

    @app.get("/cgi-bin/token")
    @wechat_endpoint("token")
    def token():
        args = request.args
        return state.token(args.get("grant_type"), args.get("appid"), args.get("secret"))

    @app.get("/sns/jscode2session")
    @wechat_endpoint("jscode2session")
    def jscode2session():
        args = request.args
        return state.code2session(
            args.get("appid"), args.get("secret"), args.get("js_code"), args.get("grant_type")
        )

    @app.route("/wxa/business/getuserphonenumber", methods=["GET", "POST"])
    @wechat_endpoint("getuserphonenumber", post=True)
    def getuserphonenumber():
        access_token = request.args.get("access_token")
        # WeChat rejects a bad token before it looks at the body, so a bad token plus bad JSON is 40001.
        state.check_token(access_token)
        return state.phone_number(access_token, _json_body())

    @app.route("/cgi-bin/message/subscribe/send", methods=["GET", "POST"])
    @wechat_endpoint("subscribe_send", post=True)
    def subscribe_send():
        access_token = request.args.get("access_token")
        state.check_token(access_token)
        return state.send_subscribe(access_token, _json_body())

    def control_body() -> dict:
        body = request.get_json(force=True, silent=True)
        return body if isinstance(body, dict) else {}

    @app.post("/_mock/login-code")
    def mock_login_code():
        body = control_body()
        code, openid = state.issue_login_code(body.get("openid"), body.get("unionid"))
        return {"code": code, "openid": openid}

    @app.post("/_mock/phone-code")
    def mock_phone_code():
        phone = control_body().get("phone")
        if not phone or not isinstance(phone, str):
            return _bad_request("phone is required")
        try:
            return {"code": state.issue_phone_code(phone)}
        except ValueError as exc:
            return _bad_request(str(exc))

    @app.get("/_mock/messages")
    def mock_messages():
        return {"items": state.messages(request.args.get("touser") or None)}

    @app.post("/_mock/faults")
    def mock_faults():
        body = control_body()
        try:
            state.inject_fault(
                body.get("endpoint", ""),
                errcode=_optional_int(body.get("errcode")),
                count=int(body.get("count", 1)),
                delay=float(body.get("delay", 0.0)),
                http_status=_optional_int(body.get("http_status")),
            )
        except (TypeError, ValueError) as exc:
            return _bad_request(str(exc))
        return {"ok": True}

    @app.post("/_mock/expire-tokens")
    def mock_expire_tokens():
        return {"ok": True, "expired": state.expire_tokens()}

    @app.post("/_mock/refusals")
    def mock_refusals():
        body = control_body()
        if not body.get("openid") or not body.get("template_id"):
            return _bad_request("openid and template_id are required")
        state.refuse(body["openid"], body["template_id"])
        return {"ok": True}

    @app.get("/_mock/stats")
    def mock_stats():
        return {"calls": state.stats()}

    @app.post("/_mock/reset")
    def mock_reset():
        state.reset()
        return {"ok": True}

    return app


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


class _LoggingRequestHandler(WSGIRequestHandler):
    # make_server sets protocol_version on the handler class it is given; a subclass keeps that
    # from leaking into werkzeug's own WSGIRequestHandler.
    pass


class FakeWeChatServer:
    """The fake served on a background thread: `with FakeWeChatServer() as wx: ... wx.url ... wx.state`."""

    def __init__(
        self,
        state: FakeWeChatState | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_requests: bool = False,
    ):
        self.state = state if state is not None else FakeWeChatState()
        self.host = host
        self._port = port
        self._log_requests = log_requests
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self) -> "FakeWeChatServer":
        """Bind and start serving; the socket is listening when this returns."""
        if self._server is not None:
            raise RuntimeError("server already started")
        handler = _LoggingRequestHandler if self._log_requests else _QuietRequestHandler
        self._server = make_server(
            self.host, self._port, create_app(self.state), threaded=True, request_handler=handler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-wechat:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the serving thread to end."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    def __enter__(self) -> "FakeWeChatServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the fake WeChat API in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="Fake WeChat server API for Sandan's demos and tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--appid", default="wx-sandan-dev")
    parser.add_argument("--secret", default="dev-wechat-secret")
    parser.add_argument("--code-ttl", type=float, default=300, help="seconds a wx.login/phone code lives")
    parser.add_argument("--token-ttl", type=float, default=7200, help="seconds an access_token lives")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)

    state = FakeWeChatState(args.appid, args.secret, code_ttl=args.code_ttl, token_ttl=args.token_ttl)
    server = FakeWeChatServer(state, args.host, args.port, log_requests=not args.quiet).start()
    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"fake WeChat API for appid {args.appid} at {server.url}", flush=True)
    # A timed wait keeps the main thread returning to the interpreter, where signal handlers run.
    while not stopping.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
