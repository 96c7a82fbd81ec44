"""The loop that POSTs queued webhook deliveries (engine.services.notify.webhooks).

A pass claims a few due rows in a short transaction (SKIP LOCKED on PostgreSQL, so
several workers never take the same row; `claimed_until` gives a crashed worker's
rows back), POSTs each one outside any transaction, and records the outcome in
another short transaction.  Delivery is at least once: a receiver tells repeats
apart by `X-ITSM-Delivery`.

Each POST re-resolves the host, applies the host rule again and connects to the
checked address itself (Host header and TLS SNI still name the host), so a DNS
answer that changed since registration cannot turn the webhook inward.  No
redirect is followed (a 3xx is a failed attempt), no proxy is read from the
environment (http.client never does), the connect and the whole exchange have
time limits, and at most `body_bytes` of the answer are read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select

from engine.domain.webhook_hosts import WebhookTarget, WebhookUrlError, callable_addresses
from engine.persistence.models import Webhook, WebhookDelivery
from engine.services.context import ServiceContext
from engine.services.notify import backlog
from engine.services.notify.webhooks import DELIVERED, FAILED, QUEUED, check_target

# Waits after the 1st, 2nd, ... failed attempt; after the last one the row fails.
BACKOFF = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
BATCH = 10
log = logging.getLogger("itsm.webhooks")
ERROR_LIMIT = 500


@dataclass(frozen=True)
class DeliveryLimits:
    connect_seconds: float = 5.0
    total_seconds: float = 10.0
    body_bytes: int = 64 * 1024


LIMITS = DeliveryLimits()


@dataclass(frozen=True)
class Claimed:
    id: int
    event_type: str
    payload: str
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None


def signature(secret: str, body: bytes) -> str:
    """The X-ITSM-Signature header's value: `sha256=` and the HMAC's hex digest."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver_due(ctx: ServiceContext, worker_name: str, limits: DeliveryLimits = LIMITS) -> int:
    """One pass: claim what is due, POST each, record each outcome; how many handled."""
    claimed, dropped = _claim(ctx, worker_name, limits)
    for item in claimed:
        try:
            outcome = post(item, ctx.channels.webhook_allowed_hosts, limits)
        except Exception as exc:  # a bug here must not leave the row claimed, uncounted
            log.exception("webhook delivery %s: posting failed", item.id)
            outcome = Outcome(False, None, f"internal error: {type(exc).__name__}")
        _record(ctx, worker_name, item.id, outcome)
    return len(claimed) + dropped


def _claim(
    ctx: ServiceContext, worker_name: str, limits: DeliveryLimits
) -> tuple[list[Claimed], int]:
    now = ctx.now()
    # Long enough for the whole batch to time out, so nobody takes a row still in hand.
    until = now + timedelta(seconds=BATCH * (limits.total_seconds + 1) + 60)
    with ctx.db.write() as session:
        rows = session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == QUEUED,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        hooks = {
            hook.id: hook
            for hook in session.scalars(
                select(Webhook).where(Webhook.id.in_({row.webhook_id for row in rows}))
            )
        }
        claimed: list[Claimed] = []
        dropped = 0
        for row in rows:
            hook = hooks[row.webhook_id]
            if hook.deleted_at is not None:
                row.status, row.last_error = FAILED, "dropped: the webhook was deleted"
                row.next_attempt_at = None
                dropped += 1
                continue
            row.claimed_by, row.claimed_until = worker_name, until
            claimed.append(Claimed(row.id, row.event_type, row.payload, hook.url, hook.secret))
        return claimed, dropped


def _record(ctx: ServiceContext, worker_name: str, delivery_id: int, outcome: Outcome) -> None:
    with ctx.db.write() as session:
        row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if row is None or row.claimed_by != worker_name or row.status != QUEUED:
            return  # our claim ran out and another worker took the row over
        now = ctx.now()
        row.attempts += 1
        row.claimed_by = row.claimed_until = None
        row.response_status = outcome.status
        row.last_error = outcome.error[:ERROR_LIMIT] if outcome.error else None
        if outcome.ok:
            row.status, row.delivered_at, row.next_attempt_at = DELIVERED, now, None
        elif row.attempts >= MAX_ATTEMPTS:
            row.status, row.next_attempt_at = FAILED, None
        else:
            row.next_attempt_at = now + BACKOFF[row.attempts - 1]


def _connect_first(
    addresses: list[str], port: int, timeout: float, deadline: float
) -> socket.socket:
    """A socket to the first of the checked addresses that answers, in the resolver's
    order (as socket.create_connection would), never past the deadline."""
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            return socket.create_connection((address, port), min(timeout, left))
        except OSError as exc:
            failure = exc
    raise failure


class _CheckedHTTPConnection(http.client.HTTPConnection):
    """Connects to the addresses the host rule accepted, not to whatever the name
    resolves to by the time the socket opens; Host still names the host."""

    def __init__(
        self, target: WebhookTarget, addresses: list[str], timeout: float, deadline: float
    ) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.checked = (addresses, deadline)
        self._create_connection = self._connect_checked  # type: ignore[method-assign]

    def _connect_checked(
        self, address: tuple[str, int], timeout: float, source: object = None
    ) -> socket.socket:
        return _connect_first(self.checked[0], address[1], timeout, self.checked[1])


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    """The same for https: the TLS handshake verifies the certificate for the host
    name (SNI and hostname check), over a socket to a checked address."""

    def __init__(
        self, target: WebhookTarget, addresses: list[str], timeout: float, deadline: float
    ) -> None:
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self.checked = (addresses, deadline)
        self._create_connection = self._connect_checked  # type: ignore[method-assign]

    def _connect_checked(
        self, address: tuple[str, int], timeout: float, source: object = None
    ) -> socket.socket:
        return _connect_first(self.checked[0], address[1], timeout, self.checked[1])


def post(item: Claimed, allowed_hosts: tuple[str, ...], limits: DeliveryLimits = LIMITS) -> Outcome:
    """POST one delivery; never raises (every failure is an Outcome with its reason)."""
    body = item.payload.encode()
    try:
        target, addresses = check_target(item.url, allowed_hosts)
    except WebhookUrlError as exc:
        return Outcome(False, None, f"refused: {exc}")
    deadline = time.monotonic() + limits.total_seconds
    connection_type = _CheckedHTTPSConnection if target.https else _CheckedHTTPConnection
    connection = connection_type(target, addresses, limits.connect_seconds, deadline)
    # The socket timeout bounds each wait; the watchdog bounds them all together (a
    # receiver dripping one byte at a time must not hold the loop past the limit).
    watchdog = threading.Timer(limits.total_seconds, _shut, args=(connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.connect()
        peer = connection.sock.getpeername()[0] if connection.sock else ""
        callable_addresses(target.host, [peer], allowed_hosts)  # what we reached is checked
        connection.sock.settimeout(max(deadline - time.monotonic(), 0.01))
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "itsm-webhooks/1",
                "X-ITSM-Signature": signature(item.secret, body),
                "X-ITSM-Event": item.event_type,
                "X-ITSM-Delivery": str(item.id),
            },
        )
        response = connection.getresponse()
        answer = response.read(limits.body_bytes)
        return _judge(response, answer, time.monotonic() > deadline)
    except WebhookUrlError as exc:
        return Outcome(False, None, f"refused: {exc}")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        late = time.monotonic() >= deadline - 0.05
        reason = f"timed out after {limits.total_seconds:g} s" if late else None
        return Outcome(False, None, reason or f"{type(exc).__name__}: {exc}")
    finally:
        watchdog.cancel()
        connection.close()


def _judge(response: http.client.HTTPResponse, answer: bytes, late: bool) -> Outcome:
    status = response.status
    if late:
        return Outcome(False, status, "timed out before the answer was read")
    if 200 <= status < 300:
        return Outcome(True, status)
    if 300 <= status < 400:
        where = response.getheader("Location", "")[:200]
        return Outcome(False, status, f"redirect not followed (to {where})")
    text = answer[:200].decode("utf-8", "replace")
    return Outcome(False, status, f"HTTP {status} {response.reason}: {text}".strip())


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing to stop
            sock.shutdown(socket.SHUT_RDWR)


def backlog_exposition(ctx: ServiceContext) -> bytes:
    """The webhook backlog gauges for /metrics, in the Prometheus text format."""
    return backlog.exposition(
        ctx,
        WebhookDelivery,
        (
            "itsm_webhook_deliveries_queued",
            "Webhook deliveries waiting to be POSTed (first tries and retries).",
        ),
        (
            "itsm_webhook_oldest_queued_age_seconds",
            "Seconds since the oldest queued webhook delivery was queued (0 when none).",
        ),
    )
