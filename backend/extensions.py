"""Extension instances, created once and bound to the app in create_app()."""

import flask_smorest
import redis
from flask import current_app
from flask_migrate import Migrate
from flask_smorest import Api
from flask_smorest.utils import resolve_schema_instance

from backend.config import PROJECT_ROOT
from backend.errors import ErrorSchema, http_exception_response


class SandanApi(Api):
    """flask-smorest's Api, documenting and rendering errors in the project's ``{code, message, details}``."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        return http_exception_response(error)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing each endpoint's arguments with one schema instance: given a class,
    webargs builds a new schema on every request, copying every field to do so."""

    def arguments(self, schema, **kwargs):
        return super().arguments(resolve_schema_instance(schema), **kwargs)


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
