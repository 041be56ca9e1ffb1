"""One Flask app per worker process, built lazily, so jobs can call services inside an app context."""

from flask import Flask

_app: Flask | None = None


def app() -> Flask:
    global _app
    if _app is None:
        from backend import create_app

        # A job runs in a process forked for it alone: a cache there would be filled once and thrown away.
        _app = create_app({"LOCAL_CACHES": False})
    return _app


def use(existing: Flask) -> None:
    """Run jobs in this process against an app built elsewhere (in-process workers in tests)."""
    global _app
    _app = existing
