"""Extension instances, created once and bound to the app in create_app()."""

import json
import re

import flask_smorest
import orjson
import redis
from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface
from flask_migrate import Migrate
from flask_smorest import Api
from flask_smorest.utils import resolve_schema_instance
from webargs.flaskparser import FlaskParser

from backend.config import PROJECT_ROOT
from backend.errors import ErrorSchema, http_exception_response

BEARER_SCHEME = "bearerAuth"


class SandanApi(Api):
    """flask-smorest's Api, documenting and rendering errors in the project's ``{code, message, details}``."""

    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *args, **kwargs):
        super().init_app(app, *args, **kwargs)
        # How a signed-in caller proves it (POST /api/v1/auth/login's access_token); each operation says
        # whether it needs it (Blueprint.register_views_in_doc), so /api/docs can send it.
        self.spec.components.security_scheme(
            BEARER_SCHEME,
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "登录（POST /api/v1/auth/login）得到的 access_token",
            },
        )

    def handle_http_exception(self, error):
        return http_exception_response(error)


NUL_MESSAGE = "不能包含空字符"
SURROGATE_MESSAGE = "含有无效字符（不成对的代理项）"
# A lone UTF-16 surrogate (JSON's \ud800 without its pair) decodes to a str no database or hash can encode.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    if _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def _unstorable_fields(value) -> dict[str, str]:
    """The fields of a JSON value (dotted paths) whose text or name cannot be stored, with why: a NUL
    character, or a lone surrogate (walked without recursion: a body may be nested as deep as the JSON
    parser allows)."""
    found, pending = {}, [(value, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if problem := _problem(value):
                found[path or "_schema"] = problem
        elif isinstance(value, dict):
            for key, inner in value.items():
                where = f"{path}.{key}" if path else str(key)
                if problem := _problem(str(key)):
                    found[where] = problem
                else:
                    pending.append((inner, where))
        elif isinstance(value, list):
            pending.extend((inner, f"{path}.{i}" if path else str(i)) for i, inner in enumerate(value))
    return dict(sorted(found.items()))


def _refuse_unstorable(location: str) -> None:
    """422 by field for a body or query holding NUL, or a body holding a lone surrogate: PostgreSQL's text
    cannot store the one, nothing can encode the other, so a value with either would fail wherever it was
    written, hashed or looked up, as a 500. The raw bytes are searched first (JSON spells them \\u0000 and
    \\ud800, a URL %00): a request without them costs no more than that."""
    if location == "json":
        raw = request.get_data(cache=True)
        if b"\\u0000" not in raw and not _SURROGATE_ESCAPE.search(raw):
            return
        found = _unstorable_fields(request.get_json(silent=True))
    elif location == "query":
        if b"%00" not in request.query_string and b"\x00" not in request.query_string:
            return
        found = {k: NUL_MESSAGE for k, v in request.args.items(multi=True) if "\x00" in k or "\x00" in v}
    else:
        return
    if found:
        flask_smorest.abort(422, messages={location: {field: [why] for field, why in found.items()}})


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, where a body's schema may vouch for a plainly valid request itself
    (``fast_load(body)`` returning what ``load`` would, or None): marshmallow's full load, three times the
    cost of a small request's own work, stays the authority on everything else (conversions, defaults and
    every error message), and a test holds each fast_load equal to it."""

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        _refuse_unstorable(location or self.location)
        fast_load = getattr(argmap, "fast_load", None)
        if fast_load is not None and not kwargs.get("validate"):
            where = location or self.location
            if where == "json":
                data = request.get_json(silent=True)  # read once, by orjson, and kept for the view
                data = data if isinstance(data, dict) else None
            else:
                data = request.args if where == "query" else None
            if data is not None and (loaded := fast_load(data)) is not None:
                return loaded
        return super().parse(argmap, req, location=location, **kwargs)

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError:  # nested deeper than the standard library reads: malformed, a 400
            raise json.JSONDecodeError("nested too deeply", doc="(body)", pos=0) from None


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing each endpoint's arguments with one schema instance: given a class,
    webargs builds a new schema on every request, copying every field to do so."""

    ARGUMENTS_PARSER = ArgumentsParser()

    def arguments(self, schema, **kwargs):
        return super().arguments(resolve_schema_instance(schema), **kwargs)

    def register_views_in_doc(self, api, app, spec, *, name, parameters):
        """Document who may call each operation, from its access declaration (backend.auth.access): a
        public one needs no token; any other the bearer token, with the roles it is open to named."""
        from backend.auth.access import rule_for

        for endpoint, doc_info in self._docs.items():
            rule = rule_for(app, f"{name}.{endpoint}")
            for method, operation in doc_info.items():
                if method == "parameters" or rule is None:
                    continue
                manual = operation.setdefault("manual_doc", {})
                manual["security"] = [] if rule.public else [{BEARER_SCHEME: []}]
                manual["x-access"] = rule.describe()
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)


api = SandanApi()
migrate = Migrate(directory=str(PROJECT_ROOT / "migrations"))


def get_redis() -> redis.Redis:
    """The app's Redis connection pool (one per process, created lazily)."""
    client = current_app.extensions.get("sandan_redis")
    if client is None:
        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2
        )
        current_app.extensions["sandan_redis"] = client
    return client


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, written by orjson: the same bytes (sorted keys, compact, UTF-8 rather than \\u escapes)
    in a fraction of the time. Dates, dataclasses and the rest orjson would format its own way go through
    Flask's own conversion, as before."""

    OPTIONS = (
        orjson.OPT_SORT_KEYS
        | orjson.OPT_NON_STR_KEYS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )

    def _orjson(self, obj) -> bytes | None:
        try:
            return orjson.dumps(obj, default=self.default, option=self.OPTIONS)
        except orjson.JSONEncodeError:  # what only the standard library takes (an integer past 64 bits)
            return None

    def loads(self, s, **kwargs):
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:  # what only the standard library reads (an integer past 64 bits)
            try:
                return super().loads(s, **kwargs)
            except RecursionError as exc:  # nested deeper than either reads: malformed, as far as we go (400)
                raise ValueError("JSON nested too deeply") from exc

    def dumps(self, obj, **kwargs) -> str:
        if not kwargs.get("indent") and self.sort_keys and (body := self._orjson(obj)) is not None:
            return body.decode()
        return super().dumps(obj, **kwargs)

    def response(self, *args, **kwargs):
        pretty = (self.compact is None and self._app.debug) or self.compact is False
        body = None if pretty else self._orjson(self._prepare_response_obj(args, kwargs))
        if body is None:
            return super().response(*args, **kwargs)
        return self._app.response_class(body + b"\n", mimetype=self.mimetype)


class NoCookieSessions(SessionInterface):
    """No Flask cookie session: API callers hold bearer tokens (the queue dashboard, a pass of its own).
    Flask would otherwise build a signer for a cookie nobody sends, on every request."""

    def open_session(self, app, request):
        return None  # Flask then hands out a null session, which refuses to be written

    def save_session(self, app, session, response) -> None:
        pass
