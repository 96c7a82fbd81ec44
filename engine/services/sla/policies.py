"""SLA targets per priority: read them, change them (a new version each time), see history.

A change applies only to clocks started from now on: every incident copies the
targets in force into its policy snapshot when it is created (`policy.take_snapshot`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.persistence.models import BusinessCalendar, SlaPolicy, SlaPolicyVersion
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid, NotFound
from engine.services.sla.clocks import STAGES

PRIORITIES = (1, 2, 3, 4, 5)
EDITOR_ROLE = "incident_manager"
ALWAYS_CALENDAR = "24x7"
FIELDS = ("response_seconds", "resolution_seconds", "calendar", "stages")
STAGE_FIELDS = ("target_seconds", "calendar")
SECONDS_FIELDS = ("response_seconds", "resolution_seconds")
# A year: generous for any target, and far inside a 32-bit integer column.
MAX_SECONDS = 366 * 86400
NOTE_MAX = 500

# Messages the pages translate by exact text.
MSG_UNKNOWN_FIELD = "is not a field of an SLA policy"
MSG_NOT_INTEGER = "must be a whole number of seconds"
MSG_NOT_POSITIVE = "must be greater than zero"
MSG_TOO_LARGE = f"must be at most {MAX_SECONDS} seconds"
MSG_RESPONSE_NOT_BELOW = "must be less than the resolution target"
MSG_RESOLUTION_NOT_ABOVE = "must be greater than the response target"
MSG_UNKNOWN_CALENDAR = "must be 24x7 or the name of a business calendar"
MSG_NOTE_TOO_LONG = f"must be at most {NOTE_MAX} characters"
MSG_NOT_AN_OBJECT = "must be an object"
MSG_UNKNOWN_STAGE = "is not a stage: service_desk, level2, level3 or vendor"
MSG_UNKNOWN_STAGE_FIELD = "is not a field of a stage target"
MSG_STAGE_CALENDAR = "must be 24x7, the name of a business calendar, or null for the policy's"

_PRIORITY_TEXT = re.compile(r"[1-5]")


def require_editor(actor: Actor) -> None:
    if EDITOR_ROLE not in actor.roles:
        raise Forbidden("only the incident manager changes SLA policies")


def parse_priority(raw: object) -> int:
    """A priority from a path: 1..5, else 404 (unknown or malformed id)."""
    if isinstance(raw, bool):
        raise NotFound(f"no SLA policy for priority {raw!r}")
    if isinstance(raw, int) and raw in PRIORITIES:
        return raw
    if isinstance(raw, str) and _PRIORITY_TEXT.fullmatch(raw):
        return int(raw)
    raise NotFound(f"no SLA policy for priority {raw!r}")


def policy_dict(row: SlaPolicy) -> dict[str, Any]:
    return {
        "priority": row.priority,
        "response_seconds": row.response_seconds,
        "resolution_seconds": row.resolution_seconds,
        "calendar": row.calendar,
        "version": row.version,
        "stages": _stages_view(row.stages),
    }


def _stages_view(stages: dict[str, Any] | None) -> dict[str, Any]:
    """Every stage, in tier order; a stage without a target is null (no clock runs)."""
    stages = stages or {}
    return {
        stage: (
            {
                "target_seconds": stages[stage]["target_seconds"],
                "calendar": stages[stage].get("calendar"),
            }
            if stages.get(stage)
            else None
        )
        for stage in STAGES
    }


def list_policies(ctx: ServiceContext) -> list[dict[str, Any]]:
    with ctx.db.read() as session:
        rows = session.scalars(select(SlaPolicy).order_by(SlaPolicy.priority))
        return [policy_dict(r) for r in rows]


def calendar_names(ctx: ServiceContext) -> list[str]:
    """Every calendar a policy may use, `24x7` first."""
    with ctx.db.read() as session:
        names = set(session.scalars(select(BusinessCalendar.name)))
    return [ALWAYS_CALENDAR, *sorted(names - {ALWAYS_CALENDAR})]


def policy_history(ctx: ServiceContext, priority: object = None) -> list[dict[str, Any]]:
    """Versions of one priority's targets (or of all, when `priority` is None), newest first."""
    query = select(SlaPolicyVersion)
    if priority is not None:
        query = query.where(SlaPolicyVersion.priority == parse_priority(priority))
    query = query.order_by(
        SlaPolicyVersion.changed_at.desc(),
        SlaPolicyVersion.priority,
        SlaPolicyVersion.version.desc(),
    )
    with ctx.db.read() as session:
        return [_version_dict(v) for v in session.scalars(query)]


def _version_dict(row: SlaPolicyVersion) -> dict[str, Any]:
    return {
        "priority": row.priority,
        "version": row.version,
        "response_seconds": row.response_seconds,
        "resolution_seconds": row.resolution_seconds,
        "calendar": row.calendar,
        "stages": _stages_view(row.stages),
        "changed_by": row.changed_by,
        "changed_at": row.changed_at,
        "note": row.note,
    }


def update_policy(
    ctx: ServiceContext, actor: Actor, priority: object, payload: Any, note: str = ""
) -> dict[str, Any]:
    """Change some of a priority's targets; a new version when anything changes."""
    require_editor(actor)
    number = parse_priority(priority)
    changes = _validate_shape(payload)
    if len(note) > NOTE_MAX:
        raise Invalid("invalid SLA policy", {"note": MSG_NOTE_TOO_LONG})
    with ctx.db.write() as session:
        row = session.get(SlaPolicy, number, with_for_update=True)
        if row is None:
            raise NotFound(f"no SLA policy for priority {number}")
        _validate_against(session, row, changes)
        if "stages" in changes:
            changes["stages"] = _merged_stages(row.stages or {}, changes["stages"])
        if all(getattr(row, name) == value for name, value in changes.items()):
            return policy_dict(row)  # nothing changes: no new version
        changed = {name for name, value in changes.items() if getattr(row, name) != value}
        before = {name: getattr(row, name) for name in sorted(changed)}
        for name, value in changes.items():
            setattr(row, name, value)
        row.version += 1
        now = ctx.now()
        session.add(_version_of(row, actor.username, now, note))
        admin_events.record(
            session,
            actor.username,
            admin_events.SLA_POLICY_CHANGED,
            now,
            priority=row.priority,
            version=row.version,
            before=before,
            after={name: getattr(row, name) for name in sorted(changed)},
            note=note,
        )
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent change took this version number
            raise Conflict("the SLA policy was changed by someone else; reload and retry") from exc
        return policy_dict(row)


def _version_of(row: SlaPolicy, changed_by: str, at: datetime, note: str) -> SlaPolicyVersion:
    return SlaPolicyVersion(
        priority=row.priority,
        version=row.version,
        response_seconds=row.response_seconds,
        resolution_seconds=row.resolution_seconds,
        calendar=row.calendar,
        stages=dict(row.stages or {}),
        changed_by=changed_by,
        changed_at=at,
        note=note,
    )


def _validate_shape(payload: Any) -> dict[str, Any]:
    """Types and ranges of each given field, before reading the database."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    if not payload:
        raise Invalid(
            "nothing to change: give response_seconds, resolution_seconds, calendar or stages",
            {},
        )
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    for name, value in payload.items():
        if name not in FIELDS:
            errors[str(name)] = MSG_UNKNOWN_FIELD
        elif name in SECONDS_FIELDS:
            if (problem := _seconds_problem(value)) is not None:
                errors[name] = problem
            else:
                changes[name] = value
        elif name == "stages":
            stages, stage_errors = _validate_stages(value)
            errors.update(stage_errors)
            changes[name] = stages
        elif not isinstance(value, str) or not value:
            errors[name] = MSG_UNKNOWN_CALENDAR
        else:
            changes[name] = value
    if errors:
        raise Invalid("invalid SLA policy", errors)
    return changes


def _seconds_problem(value: object) -> str | None:
    # bool is an int in Python, but `true` is not a number of seconds.
    if isinstance(value, bool) or not isinstance(value, int):
        return MSG_NOT_INTEGER
    if value <= 0:
        return MSG_NOT_POSITIVE
    if value > MAX_SECONDS:
        return MSG_TOO_LARGE
    return None


def _validate_stages(value: object) -> tuple[dict[str, Any], dict[str, str]]:
    """`{stage: {target_seconds?, calendar?} | null}`; null removes the stage's target."""
    if not isinstance(value, dict):
        return {}, {"stages": MSG_NOT_AN_OBJECT}
    errors: dict[str, str] = {}
    stages: dict[str, Any] = {}
    for stage, target in value.items():
        where = f"stages.{stage}"
        if stage not in STAGES:
            errors[where] = MSG_UNKNOWN_STAGE
        elif target is None:
            stages[stage] = None
        elif not isinstance(target, dict) or not target:
            errors[where] = MSG_NOT_AN_OBJECT
        else:
            for name, item in target.items():
                if name not in STAGE_FIELDS:
                    errors[f"{where}.{name}"] = MSG_UNKNOWN_STAGE_FIELD
                elif name == "target_seconds" and (problem := _seconds_problem(item)):
                    errors[f"{where}.{name}"] = problem
                elif (
                    name == "calendar" and item is not None and not (isinstance(item, str) and item)
                ):
                    errors[f"{where}.{name}"] = MSG_STAGE_CALENDAR
            stages[stage] = dict(target)
    return stages, errors


def _merged_stages(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {stage: dict(target) for stage, target in current.items() if target}
    for stage, target in changes.items():
        if target is None:
            merged.pop(stage, None)
        else:
            merged[stage] = {"calendar": None, **merged.get(stage, {}), **target}
    return merged


def _calendar_exists(session: Session, name: str) -> bool:
    return session.get(BusinessCalendar, name) is not None


def _validate_against(session: Session, row: SlaPolicy, changes: dict[str, Any]) -> None:
    """Rules that need the current values: a known calendar, response before resolution."""
    errors: dict[str, str] = {}
    calendar = changes.get("calendar")
    if calendar not in (None, ALWAYS_CALENDAR) and not _calendar_exists(session, calendar):
        errors["calendar"] = MSG_UNKNOWN_CALENDAR
    for stage, target in (changes.get("stages") or {}).items():
        stage_calendar = (target or {}).get("calendar")
        if stage_calendar not in (None, ALWAYS_CALENDAR) and not _calendar_exists(
            session, stage_calendar
        ):
            errors[f"stages.{stage}.calendar"] = MSG_STAGE_CALENDAR
        if target and "target_seconds" not in target and not (row.stages or {}).get(stage):
            errors[f"stages.{stage}.target_seconds"] = "is required for a stage without a target"
    response = changes.get("response_seconds", row.response_seconds)
    resolution = changes.get("resolution_seconds", row.resolution_seconds)
    if response >= resolution:
        # Name the target(s) this change moves; a value sent unchanged is not to blame.
        response_moved = response != row.response_seconds
        resolution_moved = resolution != row.resolution_seconds
        if response_moved or not resolution_moved:
            errors["response_seconds"] = MSG_RESPONSE_NOT_BELOW
        if resolution_moved:
            errors["resolution_seconds"] = MSG_RESOLUTION_NOT_ABOVE
    if errors:
        raise Invalid("invalid SLA policy", errors)
