"""The priority matrix and SLA targets an incident is bound to (a snapshot
taken at creation, so later policy edits never rewrite running clocks)."""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.calendars import (
    BusinessCalendar,
    calendar_from_dict,
    taiwan_makeup_working_days,
    taiwan_public_holidays,
)
from engine.domain.priority import PriorityMatrix
from engine.domain.sla import TWENTY_FOUR_SEVEN, SlaTarget, WorkCalendar
from engine.persistence.models import BusinessCalendar as BusinessCalendarRow
from engine.persistence.models import PriorityMatrixCell, SlaPolicy
from engine.services.sla.clocks import RESOLUTION, RESPONSE, STAGES, ClockSpec

TWENTY_FOUR_SEVEN_NAME = "24x7"
# Taiwan's public holidays are looked up for these years.
HOLIDAY_YEARS = range(2020, 2041)


def take_snapshot(session: Session) -> dict[str, Any]:
    matrix = [
        [c.impact, c.urgency, c.priority] for c in session.scalars(select(PriorityMatrixCell))
    ]
    sla: dict[str, dict[str, Any]] = {
        str(p.priority): {
            "response_seconds": p.response_seconds,
            "resolution_seconds": p.resolution_seconds,
            "calendar": p.calendar,
            "version": p.version,
            "stages": dict(p.stages or {}),
        }
        for p in session.scalars(select(SlaPolicy))
    }
    names = {
        name
        for policy in sla.values()
        for name in (
            policy["calendar"],
            *(stage.get("calendar") for stage in policy["stages"].values()),
        )
        if name and name != TWENTY_FOUR_SEVEN_NAME
    }
    calendars = {
        row.name: {"timezone": row.timezone, **row.definition}
        for row in session.scalars(
            select(BusinessCalendarRow).where(BusinessCalendarRow.name.in_(sorted(names)))
        )
    }
    return {"matrix": matrix, "sla": sla, "calendars": calendars}


def matrix_of(snapshot: dict[str, Any]) -> PriorityMatrix:
    return {(int(i), int(u)): int(p) for i, u, p in snapshot["matrix"]}


def clock_specs(snapshot: dict[str, Any], priority: int) -> dict[str, ClockSpec]:
    """Every clock's target and calendar for that priority; a stage without a calendar of
    its own counts in the priority's calendar."""
    policy = snapshot["sla"][str(priority)]
    version = policy.get("version")
    calendar_name = policy.get("calendar") or TWENTY_FOUR_SEVEN_NAME
    calendar = calendar_named(snapshot, calendar_name)
    specs = {
        RESPONSE: ClockSpec(int(policy["response_seconds"]), calendar, calendar_name, version),
        RESOLUTION: ClockSpec(int(policy["resolution_seconds"]), calendar, calendar_name, version),
    }
    for stage in STAGES:
        target = policy.get("stages", {}).get(stage)
        if not target:
            continue
        name = target.get("calendar") or calendar_name
        specs[stage] = ClockSpec(
            int(target["target_seconds"]), calendar_named(snapshot, name), name, version
        )
    return specs


def calendar_named(snapshot: dict[str, Any], name: str | None) -> WorkCalendar:
    if not name or name == TWENTY_FOUR_SEVEN_NAME:
        return TWENTY_FOUR_SEVEN
    definition = snapshot.get("calendars", {}).get(name)
    if definition is None:
        raise ValueError(f"the incident's policy snapshot lacks calendar {name!r}")
    return calendar_from_definition(name, json.dumps(definition, sort_keys=True))


@lru_cache(maxsize=64)
def calendar_from_definition(name: str, definition_json: str) -> BusinessCalendar:
    """Stored definition → calendar (cached: Taiwan's holiday tables are built once)."""
    definition = json.loads(definition_json)
    weekly = {
        day: [{"start": start, "end": end} for start, end in periods]
        for day, periods in definition.get("weekly", {}).items()
    }
    data: dict[str, Any] = {
        "name": name,
        "timezone": definition["timezone"],
        "weekly": weekly,
        "holidays": list(definition.get("holidays", [])),
        "extra_days_off": list(definition.get("extra_days_off", [])),
        "makeup_working_days": list(definition.get("makeup_working_days", [])),
    }
    if definition.get("use_taiwan_holidays"):
        years = range(HOLIDAY_YEARS.start, HOLIDAY_YEARS.stop)
        data["holidays"] += [d.isoformat() for d in taiwan_public_holidays(years)]
        makeup = taiwan_makeup_working_days(years) - {
            date.fromisoformat(d) for d in data["extra_days_off"]
        }
        data["makeup_working_days"] += [d.isoformat() for d in makeup]
    data["makeup_working_days"] = sorted(set(data["makeup_working_days"]))
    data["holidays"] = sorted(set(data["holidays"]))
    return calendar_from_dict(data)


def targets_of(snapshot: dict[str, Any]) -> dict[int, SlaTarget]:
    return {
        int(priority): SlaTarget(int(v["response_seconds"]), int(v["resolution_seconds"]))
        for priority, v in snapshot["sla"].items()
    }
