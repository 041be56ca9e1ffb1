"""Order jobs from the outbox: what Sandan does to an order by itself, later."""

from backend.orders import placing, service
from workers.registry import job


@job(placing.ANNOUNCE_JOB)
def announce_placed(*, order_id: int) -> None:
    """Ask the community's secretaries to accept a new order still waiting for them."""
    service.announce_placed(order_id=order_id)


@job(service.AUTO_CLOSE_JOB)
def auto_close(*, order_id: int, resolved_at: str) -> None:
    """Close a resolved order its resident left unconfirmed (nothing if it moved on)."""
    service.auto_close(order_id=order_id, resolved_at=resolved_at)
