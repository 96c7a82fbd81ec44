"""The priority matrix and SLA targets an incident is bound to (a snapshot
taken at creation, so later policy edits never rewrite running clocks)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.priority import PriorityMatrix
from engine.domain.sla import SlaTarget
from engine.persistence.models import PriorityMatrixCell, SlaPolicy


def take_snapshot(session: Session) -> dict[str, Any]:
    matrix = [
        [c.impact, c.urgency, c.priority] for c in session.scalars(select(PriorityMatrixCell))
    ]
    sla = {
        str(p.priority): {
            "response_seconds": p.response_seconds,
            "resolution_seconds": p.resolution_seconds,
            "calendar": p.calendar,
            "version": p.version,
        }
        for p in session.scalars(select(SlaPolicy))
    }
    return {"matrix": matrix, "sla": sla}


def matrix_of(snapshot: dict[str, Any]) -> PriorityMatrix:
    return {(int(i), int(u)): int(p) for i, u, p in snapshot["matrix"]}


def targets_of(snapshot: dict[str, Any]) -> dict[int, SlaTarget]:
    return {
        int(priority): SlaTarget(int(v["response_seconds"]), int(v["resolution_seconds"]))
        for priority, v in snapshot["sla"].items()
    }
