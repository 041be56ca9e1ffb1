"""Appointment jobs from the outbox: the reminder the evening before a visit."""

from backend.appointments import service
from workers.registry import job


@job(service.REMIND_JOB)
def remind(*, booking_id: int, schedule_version: int) -> None:
    """Remind the resident of a booking (nothing if it was cancelled or moved since)."""
    service.send_reminder(booking_id=booking_id, schedule_version=schedule_version)
