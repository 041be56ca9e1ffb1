"""One Flask app per worker process, built lazily, so jobs can call services inside an app context."""

from flask import Flask

_app: Flask | None = None


def app() -> Flask:
    global _app
    if _app is None:
        from backend import create_app

        _app = create_app()
    return _app
