"""Errand jobs from the outbox: a step's automatic actions, and reminders about missing materials."""

from backend.errands import service
from workers.registry import job


@job(service.STEP_JOB)
def step_actions(*, errand_id: int, event_id: int) -> None:
    """Tell the resident of the step, and the agent of an errand put in their queue."""
    service.step_actions(errand_id=errand_id, event_id=event_id)


@job(service.REMIND_JOB)
def remind_materials(*, errand_id: int, pending_since: str, count: int) -> None:
    """Remind the resident of missing materials (nothing if they arrived since)."""
    service.remind_materials(errand_id=errand_id, pending_since=pending_since, count=count)
