"""What waits in the two queues of this area (the mail outbox and the webhook
deliveries), as gauges for /metrics: how many rows are queued and how old the
oldest is."""

from __future__ import annotations

from datetime import UTC

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select

from engine.persistence.models import Notification, WebhookDelivery
from engine.services.context import ServiceContext

Queue = type[Notification] | type[WebhookDelivery]
QUEUED = "queued"


def backlog(ctx: ServiceContext, queue: Queue) -> tuple[int, float | None]:
    """Queued rows, and the age in seconds of the oldest (None when none)."""
    with ctx.db.read() as session:
        count, oldest = session.execute(
            select(func.count(queue.id), func.min(queue.created_at)).where(queue.status == QUEUED)
        ).one()
    if not count or oldest is None:
        return 0, None
    if oldest.tzinfo is None:  # SQLite's aggregate skips the column's type: UTC
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max((ctx.now() - oldest).total_seconds(), 0.0)


def exposition(
    ctx: ServiceContext, queue: Queue, queued: tuple[str, str], oldest_age: tuple[str, str]
) -> bytes:
    """The two gauges, each a (name, help), in the Prometheus text format."""
    count, age = backlog(ctx, queue)
    registry = CollectorRegistry(auto_describe=True)
    Gauge(*queued, registry=registry).set(count)
    Gauge(*oldest_age, registry=registry).set(age or 0.0)
    return generate_latest(registry)
