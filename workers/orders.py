"""Order jobs from the outbox: what Sandan does to an order by itself, later."""

from backend.orders import service
from workers.registry import job


@job(service.AUTO_CLOSE_JOB)
def auto_close(*, order_id: int, resolved_at: str) -> None:
    """Close a resolved order its resident left unconfirmed (nothing if it moved on)."""
    service.auto_close(order_id=order_id, resolved_at=resolved_at)
