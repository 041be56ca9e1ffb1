"""Extension instances, created once and bound to the app in create_app()."""

import redis
from flask import current_app
from flask_migrate import Migrate
from flask_smorest import Api

from backend.config import PROJECT_ROOT
from backend.errors import ErrorSchema, http_exception_response


class SandanApi(Api):
    """flask-smorest's Api, documenting and rendering errors in the project's ``{code, message, details}``."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        return http_exception_response(error)


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
