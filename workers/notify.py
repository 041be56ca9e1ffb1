"""The notifications' job: deliver one notification through WeChat (the service decides and records)."""

from backend.notify import service
from workers.registry import job


@job("notify.send")
def send(notification_id: int) -> None:
    """Send a notification's WeChat subscribe message, or record why not; reschedules itself on a retry."""
    service.deliver(notification_id=notification_id)
