"""Suspended time per incident and per person (seed term 12: fair handling-time metrics).

A suspension runs from a `suspended` event to the next `resumed` event of the
same incident (or to now).  It is attributed to the person who suspended the
incident, so a handler's time on hold can be told apart from working time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.persistence.models import Event
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid

REPORT_ROLE = "incident_manager"


@dataclass(frozen=True)
class SuspensionPeriod:
    incident_id: int
    by: str
    category: str | None
    start: datetime
    end: datetime | None  # None: still suspended
    resumed_by: str | None

    def seconds(self, now: datetime, since: datetime | None = None) -> float:
        start = max(self.start, since) if since is not None else self.start
        end = min(self.end or now, now)
        return max((end - start).total_seconds(), 0.0)


def periods_of(
    rows: Iterable[tuple[int, datetime, str, str, dict[str, Any]]],
) -> list[SuspensionPeriod]:
    """Rows (incident_id, at, type, actor, data) in event order → suspension periods."""
    open_: dict[int, tuple[str, str | None, datetime]] = {}
    periods: list[SuspensionPeriod] = []
    for incident_id, at, type_, actor, data in rows:
        if type_ == "suspended" and incident_id not in open_:
            open_[incident_id] = (actor, (data or {}).get("category"), at)
        elif type_ == "resumed" and incident_id in open_:
            by, category, start = open_.pop(incident_id)
            periods.append(SuspensionPeriod(incident_id, by, category, start, at, actor))
    for incident_id, (by, category, start) in open_.items():
        periods.append(SuspensionPeriod(incident_id, by, category, start, None, None))
    return sorted(periods, key=lambda p: (p.start, p.incident_id))


def per_person(
    periods: Iterable[SuspensionPeriod], now: datetime, since: datetime | None = None
) -> list[dict[str, Any]]:
    people: dict[str, dict[str, Any]] = {}
    for period in periods:
        seconds = period.seconds(now, since)
        entry = people.setdefault(
            period.by, {"username": period.by, "suspensions": 0, "seconds": 0.0, "incidents": set()}
        )
        entry["suspensions"] += 1
        entry["seconds"] += seconds
        entry["incidents"].add(period.incident_id)
    return [
        {**entry, "seconds": round(entry["seconds"], 3), "incidents": len(entry["incidents"])}
        for entry in sorted(people.values(), key=lambda e: (-e["seconds"], e["username"]))
    ]


def _rows(
    session: Session, *conditions: Any
) -> list[tuple[int, datetime, str, str, dict[str, Any]]]:
    query = (
        select(Event.incident_id, Event.at, Event.type, Event.actor, Event.data)
        .where(Event.type.in_(("suspended", "resumed")), *conditions)
        .order_by(Event.incident_id, Event.id)
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def incident_suspensions(session: Session, incident_id: int, now: datetime) -> dict[str, Any]:
    periods = periods_of(_rows(session, Event.incident_id == incident_id))
    return {
        "periods": [
            {
                "by": p.by,
                "category": p.category,
                "start": p.start.isoformat(),
                "end": p.end.isoformat() if p.end else None,
                "resumed_by": p.resumed_by,
                "seconds": round(p.seconds(now), 3),
            }
            for p in periods
        ],
        "per_person": per_person(periods, now),
    }


def parse_since(raw: object) -> datetime | None:
    """`since` of a report: an ISO 8601 time with a UTC offset, or nothing."""
    if raw is None or raw == "":
        return None
    try:
        since = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise Invalid(
            "invalid report period", {"since": "must be an ISO 8601 time with a UTC offset"}
        )
    return since


def suspension_report(
    ctx: ServiceContext, actor: Actor, since: datetime | None = None
) -> dict[str, Any]:
    """Suspended time per person over all incidents (the part after `since`, if given)."""
    if REPORT_ROLE not in actor.roles:
        raise Forbidden("only the incident manager sees suspended time per person")
    now = ctx.now()
    with ctx.db.read() as session:
        periods = periods_of(_rows(session))
    if since is not None:
        periods = [p for p in periods if p.end is None or p.end > since]
    people = per_person(periods, now, since)
    return {
        "since": since.isoformat() if since else None,
        "until": now.isoformat(),
        "people": people,
        "total_seconds": round(sum(p["seconds"] for p in people), 3),
    }
