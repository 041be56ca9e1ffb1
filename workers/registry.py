"""Job names the outbox may carry, and the functions that do them.

A job function takes the message's args as keyword arguments, runs inside an app context and inside the
transaction that marks its message done, and does not commit: its database effects and the "done" mark land
together, so a second run of the same message changes nothing.
"""

import importlib
from collections.abc import Callable

JOBS: dict[str, Callable[..., object]] = {}


def job(name: str):
    """Register a function under a job name (the name the backend records in the outbox)."""

    def register(fn):
        if name in JOBS and JOBS[name] is not fn:
            raise ValueError(f"job name {name!r} is taken")
        JOBS[name] = fn
        return fn

    return register


# Modules whose import registers the product's jobs.
JOB_MODULES = ("workers.jobs", "workers.sla", "workers.orders", "workers.appointments", "workers.errands")


def import_all() -> None:
    """Import every module that registers jobs (idempotent)."""
    for module in JOB_MODULES:
        importlib.import_module(module)


def lookup(name: str) -> Callable[..., object]:
    import_all()

    try:
        return JOBS[name]
    except KeyError:
        raise LookupError(f"no job registered as {name!r}") from None
