"""Log lines the processes write: the web under gunicorn and the worker alike, timestamped and named."""

import logging
import os

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure() -> None:
    """Send log records to standard error with a time and their source, at SANDAN_LOG_LEVEL (INFO by
    default). Left alone when logging is already set up (a test runner, an embedding server): without it,
    Python writes an unhandled error's traceback bare, with no time and no level."""
    root = logging.getLogger()
    if root.handlers:
        return
    level = os.environ.get("SANDAN_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(format=FORMAT, level=level if level in logging.getLevelNamesMapping() else "INFO")
