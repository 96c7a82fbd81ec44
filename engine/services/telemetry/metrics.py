"""The figures /metrics exports (Prometheus text format, prometheus_client).

Counters and histograms live in this process's memory, in prometheus_client's
default registry (which also carries the process and Python collectors): each
`itsm serve` or `itsm worker` process exports its own, and Prometheus adds them
up across the processes it scrapes. Every label has a bounded set of values: a
route is the URL rule (`/api/v1/incidents/<int:incident_id>`), never the path.

A figure about a write (a task completed, a threshold announced) is counted when
that write commits: a transaction that rolls back, or is retried, counts nothing.

Figures read from the database at scrape time (the worker's heartbeat) are the
same from every process; `state_exposition` renders them from a `StateReadings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import event
from sqlalchemy.orm import Session

# Methods outside this set are counted as "other": a client may send any token.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "(unmatched)"  # no URL rule: 404, 405, or refused before routing
SLA_KINDS = {"sla_warning": "warning", "sla_breached": "breached"}

HTTP_REQUESTS = Counter(
    "itsm_http_requests",
    "HTTP requests answered, by URL rule, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "itsm_http_request_duration_seconds",
    "Time from the request's arrival in the app to its response, by URL rule and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TASK_COMPLETIONS = Counter(
    "itsm_task_completions",
    "User tasks completed (committed), by lane.",
    ["lane"],
)
SLA_FIRINGS = Counter(
    "itsm_sla_firings",
    "SLA thresholds announced by the worker (committed): warning (50 %, 75 %) or breached.",
    ["kind"],
)
SLA_FIRING_DELAY = Histogram(
    "itsm_sla_firing_delay_seconds",
    "How long after a threshold was reached the worker announced it (24x7 clocks only: "
    "on a business calendar the moment is not tracked).",
    ["kind"],
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0),
)
for _kind in SLA_KINDS.values():  # exported as 0 before the first firing
    SLA_FIRINGS.labels(kind=_kind)
    SLA_FIRING_DELAY.labels(kind=_kind)


def count_request(route: str | None, method: str, status: int, seconds: float) -> None:
    """One answered request; `route` is the matched URL rule (None when none matched)."""
    route = route or UNMATCHED_ROUTE
    method = method if method in KNOWN_METHODS else "other"
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    HTTP_DURATION.labels(route=route, method=method).observe(seconds)


def count_task_completion(session: Session, lane: str) -> None:
    """A user task of `lane` completed in `session`'s transaction."""
    after_commit(session, TASK_COMPLETIONS.labels(lane=lane).inc)


def count_sla_firing(session: Session, event_type: str, delay_seconds: float | None) -> None:
    """An `sla_warning` or `sla_breached` written in `session`'s transaction,
    `delay_seconds` after the threshold was reached (None when not known)."""
    kind = SLA_KINDS[event_type]

    def count() -> None:
        SLA_FIRINGS.labels(kind=kind).inc()
        if delay_seconds is not None:
            SLA_FIRING_DELAY.labels(kind=kind).observe(delay_seconds)

    after_commit(session, count)


_PENDING = "itsm_telemetry_after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` when `session`'s transaction commits; drop it if it rolls back."""
    pending: list[Callable[[], None]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _run_pending)
        event.listen(session, "after_rollback", _drop_pending)
    pending.append(action)


def _run_pending(session: Session) -> None:
    actions = session.info.get(_PENDING) or []
    session.info[_PENDING] = []
    for action in actions:
        action()


def _drop_pending(session: Session) -> None:
    session.info[_PENDING] = []


@dataclass(frozen=True)
class StateReadings:
    """What the database says at scrape time (engine.services.ops.health reads it).

    Extension point: the mail outbox backlog (mails queued and not yet sent) joins
    here once the outbox exists: a field, its count in the health probe, and a gauge
    in `state_exposition`."""

    # Seconds since the newest worker heartbeat; None when none is recorded or the
    # database did not answer (the gauge is then absent, not a made-up number).
    worker_heartbeat_age_seconds: float | None


def state_exposition(readings: StateReadings) -> bytes:
    """The scrape-time gauges in the text format, to follow the process's own figures."""
    registry = CollectorRegistry(auto_describe=True)
    if readings.worker_heartbeat_age_seconds is not None:
        Gauge(
            "itsm_worker_heartbeat_age_seconds",
            "Seconds since a timer worker (any process) last recorded its heartbeat.",
            registry=registry,
        ).set(readings.worker_heartbeat_age_seconds)
    return generate_latest(registry)
