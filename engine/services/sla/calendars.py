"""Named business calendars an SLA policy may count in: list, read, create, replace, delete.

`24x7` (around the clock) is built in: always listed first, never changed or deleted.
A change applies only to clocks started from now on: every incident copies the
definition of each calendar its policy uses into its policy snapshot when it is
created (`policy.take_snapshot`), so running clocks keep the hours they started with.

The JSON form (what the API reads and answers):

    {"name", "timezone", "weekly": {"mon": [{"start": "HH:MM", "end": "HH:MM"}], ...},
     "holidays": [...], "extra_days_off": [...], "makeup_working_days": [...],
     "use_taiwan_holidays": bool, "builtin": bool, "used_by": [priorities]}

The stored form (`business_calendars.definition`, as the migration seeds it and
`policy.calendar_from_definition` reads it): weekly periods as ["HH:MM", "HH:MM"] pairs, only the
days that have working time, and the date lists sorted.

Every check is the domain's (`calendar_from_dict`); its `CalendarError.field` is mapped
to the JSON field (`weekly.mon` for one weekday's hours).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.domain.calendars import (
    WEEKDAY_KEYS,
    CalendarError,
    calendar_from_dict,
    calendar_to_dict,
)
from engine.persistence.models import BusinessCalendar, SlaPolicy
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid, NotFound
from engine.services.sla import snapshot as policy
from engine.services.sla.policies import ALWAYS_CALENDAR, EDITOR_ROLE

audit = logging.getLogger("itsm.audit")

BUILTIN_TIMEZONE = "UTC"
NAME_MAX = 80  # the column's length
DATE_FIELDS = ("holidays", "extra_days_off", "makeup_working_days")
FIELDS = ("name", "timezone", "weekly", *DATE_FIELDS, "use_taiwan_holidays")
# Answered by GET; accepted and ignored in a body, so a read calendar can be sent back.
READ_ONLY_FIELDS = ("builtin", "used_by")

# Messages the pages translate by exact text (or, for MSG_MAKEUP_CLASH, by prefix).
MSG_UNKNOWN_FIELD = "is not a field of a business calendar"
MSG_REQUIRED = "is required"
MSG_BAD_NAME = f"must be 1 to {NAME_MAX} lowercase letters, digits or underscores"
MSG_RESERVED_NAME = "24x7 is built in; choose another name"
MSG_NAME_TAKEN = "a calendar with this name already exists"
MSG_NAME_CHANGED = "cannot be changed; create a calendar with the new name instead"
MSG_NOT_BOOL = "must be true or false"
MSG_NO_WORKING_TIME = "give at least one weekday working hours"
MSG_MAKEUP_NEEDS_MONDAY = (
    "make-up working days are worked with Monday's hours; give Monday working hours"
)
MSG_MAKEUP_CLASH = "must not also be extra days off"

_NAME = re.compile(rf"[a-z0-9_]{{1,{NAME_MAX}}}")
# A calendar the single-field checks complete: valid, with working time on Mondays.
_PROBE: dict[str, Any] = {
    "name": "probe",
    "timezone": BUILTIN_TIMEZONE,
    "weekly": {"mon": [{"start": "00:00", "end": "24:00"}]},
}


@dataclass(frozen=True)
class _Checked:
    """A validated calendar: its name, zone and stored definition."""

    name: str
    timezone: str
    definition: dict[str, Any]


# --- who and which ---------------------------------------------------------------------------


def require_editor(actor: Actor) -> None:
    if EDITOR_ROLE not in actor.roles:
        raise Forbidden("only the incident manager changes business calendars")


def parse_name(raw: object) -> str:
    """A calendar name from a path: a well-formed name, else 404."""
    if isinstance(raw, str) and _NAME.fullmatch(raw):
        return raw
    raise NotFound(f"no business calendar {raw!r}")


def _changeable_name(raw: object) -> str:
    name = parse_name(raw)
    if name == ALWAYS_CALENDAR:
        raise Forbidden("24x7 is built in: it cannot be changed or deleted")
    return name


def require_changeable(ctx: ServiceContext, actor: Actor, raw_name: object) -> str:
    """Who (403), which (404) and not the built-in one (403): checked before a body is read."""
    require_editor(actor)
    name = _changeable_name(raw_name)
    with ctx.db.read() as session:
        if session.get(BusinessCalendar, name) is None:
            raise NotFound(f"no business calendar {name!r}")
    return name


# --- reading ---------------------------------------------------------------------------------


def _calendars_of(row: SlaPolicy) -> set[str]:
    """The calendars a policy's clocks count in: its own and its stages' (if set)."""
    names = {row.calendar}
    for stage in (row.stages or {}).values():
        if isinstance(stage, dict) and stage.get("calendar"):
            names.add(str(stage["calendar"]))
    return names


def _users(session: Session, *, lock: bool = False) -> dict[str, list[int]]:
    """Calendar name → the priorities whose SLA policy counts in it."""
    query = select(SlaPolicy).order_by(SlaPolicy.priority)
    used: dict[str, list[int]] = {}
    for row in session.scalars(query.with_for_update() if lock else query):
        for name in _calendars_of(row):
            used.setdefault(name, []).append(row.priority)
    return used


def _builtin_dict(used_by: list[int]) -> dict[str, Any]:
    whole_day = [{"start": "00:00", "end": "24:00"}]
    return {
        "name": ALWAYS_CALENDAR,
        "timezone": BUILTIN_TIMEZONE,
        "weekly": {key: list(whole_day) for key in WEEKDAY_KEYS},
        "holidays": [],
        "extra_days_off": [],
        "makeup_working_days": [],
        "use_taiwan_holidays": False,
        "builtin": True,
        "used_by": used_by,
    }


def calendar_dict(row: BusinessCalendar, used_by: list[int]) -> dict[str, Any]:
    if row.name == ALWAYS_CALENDAR:
        return _builtin_dict(used_by)
    definition = row.definition or {}
    weekly = definition.get("weekly", {})
    return {
        "name": row.name,
        "timezone": row.timezone,
        "weekly": {
            key: [{"start": start, "end": end} for start, end in weekly.get(key, [])]
            for key in WEEKDAY_KEYS
        },
        **{key: list(definition.get(key, [])) for key in DATE_FIELDS},
        "use_taiwan_holidays": bool(definition.get("use_taiwan_holidays", False)),
        "builtin": False,
        "used_by": used_by,
    }


def list_calendars(ctx: ServiceContext) -> list[dict[str, Any]]:
    """Every calendar, `24x7` first, then by name."""
    with ctx.db.read() as session:
        used = _users(session)
        rows = session.scalars(
            select(BusinessCalendar)
            .where(BusinessCalendar.name != ALWAYS_CALENDAR)
            .order_by(BusinessCalendar.name)
        )
        listed = [calendar_dict(row, used.get(row.name, [])) for row in rows]
    return [_builtin_dict(used.get(ALWAYS_CALENDAR, [])), *listed]


def get_calendar(ctx: ServiceContext, raw_name: object) -> dict[str, Any]:
    name = parse_name(raw_name)
    with ctx.db.read() as session:
        used = _users(session)
        if name == ALWAYS_CALENDAR:
            return _builtin_dict(used.get(name, []))
        row = session.get(BusinessCalendar, name)
        if row is None:
            raise NotFound(f"no business calendar {name!r}")
        return calendar_dict(row, used.get(name, []))


# --- writing ---------------------------------------------------------------------------------


def create_calendar(ctx: ServiceContext, actor: Actor, payload: Any) -> dict[str, Any]:
    require_editor(actor)
    checked = _validate(payload, path_name=None)
    with ctx.db.write() as session:
        if session.get(BusinessCalendar, checked.name) is not None:
            raise Conflict(
                f"a business calendar named {checked.name!r} already exists",
                {"name": MSG_NAME_TAKEN},
            )
        row = BusinessCalendar(
            name=checked.name,
            timezone=checked.timezone,
            definition=checked.definition,
            created_at=ctx.now(),
        )
        session.add(row)
        admin_events.record(
            session,
            actor.username,
            admin_events.CALENDAR_CREATED,
            row.created_at,
            name=row.name,
            timezone=row.timezone,
            definition=row.definition,
        )
        try:
            session.flush()
        except IntegrityError as exc:  # created at the same moment by someone else
            raise Conflict(
                f"a business calendar named {checked.name!r} already exists",
                {"name": MSG_NAME_TAKEN},
            ) from exc
        audit.info("business calendar %s created by %s", checked.name, actor.username)
        return calendar_dict(row, [])


def replace_calendar(
    ctx: ServiceContext, actor: Actor, raw_name: object, payload: Any
) -> dict[str, Any]:
    """Replace every field of a calendar (omitted date lists become empty)."""
    require_editor(actor)
    name = _changeable_name(raw_name)
    checked = _validate(payload, path_name=name)
    with ctx.db.write() as session:
        row = session.get(BusinessCalendar, name, with_for_update=True)
        if row is None:
            raise NotFound(f"no business calendar {name!r}")
        before = {"timezone": row.timezone, "definition": row.definition}
        after = {"timezone": checked.timezone, "definition": checked.definition}
        if before != after:
            admin_events.record(
                session,
                actor.username,
                admin_events.CALENDAR_CHANGED,
                ctx.now(),
                name=name,
                before=before,
                after=after,
            )
        row.timezone = checked.timezone
        row.definition = checked.definition
        used = _users(session)
        audit.info("business calendar %s replaced by %s", name, actor.username)
        return calendar_dict(row, used.get(name, []))


def delete_calendar(ctx: ServiceContext, actor: Actor, raw_name: object) -> None:
    """Delete a calendar no SLA policy uses; incidents keep their copies of it."""
    require_editor(actor)
    name = _changeable_name(raw_name)
    with ctx.db.write() as session:
        row = session.get(BusinessCalendar, name, with_for_update=True)
        if row is None:
            raise NotFound(f"no business calendar {name!r}")
        # Locking the policies makes a concurrent switch to this calendar wait for us
        # (and then find it gone), or us wait for it (and then see it in use).
        users = _users(session, lock=True).get(name, [])
        if users:
            listed = ", ".join(f"P{p}" for p in users)
            raise Conflict(
                f"the SLA policies of {listed} use calendar {name!r}; "
                "switch them to another calendar first",
                {"used_by": users},
            )
        session.delete(row)
        admin_events.record(
            session,
            actor.username,
            admin_events.CALENDAR_DELETED,
            ctx.now(),
            name=name,
            timezone=row.timezone,
            definition=row.definition,
        )
        audit.info("business calendar %s deleted by %s", name, actor.username)


# --- validation ------------------------------------------------------------------------------


def validate_calendar(payload: Any, path_name: str | None = None) -> None:
    """Raise Invalid as create (path_name None) or replace would, without writing."""
    _validate(payload, path_name)


def _validate(payload: Any, path_name: str | None) -> _Checked:
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    errors: dict[str, str] = {}
    for key in payload:
        if key not in FIELDS and key not in READ_ONLY_FIELDS:
            errors[str(key)] = MSG_UNKNOWN_FIELD
    name = _check_name(payload, path_name, errors)
    if "timezone" not in payload:
        errors["timezone"] = MSG_REQUIRED
    else:
        _check_field(errors, "timezone", timezone=payload["timezone"])
    _check_weekly(payload, errors)
    for key in DATE_FIELDS:
        if key in payload:
            _check_field(errors, key, **{key: payload[key]})
    use_taiwan = payload.get("use_taiwan_holidays", True)
    if not isinstance(use_taiwan, bool):
        errors["use_taiwan_holidays"] = MSG_NOT_BOOL
    if errors:
        raise Invalid("invalid business calendar", errors)
    return _build(name, payload, use_taiwan)


def _check_name(payload: dict[str, Any], path_name: str | None, errors: dict[str, str]) -> str:
    if path_name is not None:  # replacing: the name is the path's
        if "name" in payload and payload["name"] != path_name:
            errors["name"] = MSG_NAME_CHANGED
        return path_name
    name = payload.get("name")
    if "name" not in payload:
        errors["name"] = MSG_REQUIRED
    elif not isinstance(name, str) or not _NAME.fullmatch(name):
        errors["name"] = MSG_BAD_NAME
    elif name == ALWAYS_CALENDAR:
        errors["name"] = MSG_RESERVED_NAME
    return name if isinstance(name, str) else ""


def _check_weekly(payload: dict[str, Any], errors: dict[str, str]) -> None:
    if "weekly" not in payload:
        errors["weekly"] = MSG_REQUIRED
        return
    weekly = payload["weekly"]
    if not isinstance(weekly, dict):
        _check_field(errors, "weekly", weekly=weekly)
        return
    valid = True
    for key, periods in weekly.items():
        # One weekday at a time, so each day's problem is named by its own field.
        valid &= _check_field(errors, f"weekly.{key}", weekly={key: periods})
    if valid and not any(weekly.values()):
        errors["weekly"] = MSG_NO_WORKING_TIME


def _check_field(errors: dict[str, str], field: str, **value: Any) -> bool:
    """Let the domain check one field, on a calendar valid in everything else."""
    try:
        calendar_from_dict({**_PROBE, **value})
    except CalendarError as error:
        errors[field] = _message(error)
        return False
    return True


def _message(error: CalendarError) -> str:
    """The domain's message without its leading "field: "."""
    text = str(error)
    prefix = f"{error.field}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _build(name: str, payload: dict[str, Any], use_taiwan: bool) -> _Checked:
    """The stored definition; rules across fields are checked on the calendar exactly as
    incidents will read it (Taiwan's holidays and make-up days included)."""
    timezone = payload["timezone"]
    data = {"name": name, "timezone": timezone, "weekly": payload["weekly"]}
    data.update({key: payload[key] for key in DATE_FIELDS if key in payload})
    try:
        normal = calendar_to_dict(calendar_from_dict(data))
        weekly = normal["weekly"]
        assert isinstance(weekly, dict)
        definition: dict[str, Any] = {
            "timezone": timezone,
            "weekly": {
                key: [[p["start"], p["end"]] for p in periods]
                for key, periods in weekly.items()
                if periods
            },
            **{key: normal[key] for key in DATE_FIELDS},
            "use_taiwan_holidays": use_taiwan,
        }
        # The reader incidents use on the copy in their policy snapshot.
        policy.calendar_from_definition(
            name, json.dumps({"timezone": timezone, **definition}, sort_keys=True)
        )
    except CalendarError as error:
        raise Invalid("invalid business calendar", _cross_field(error)) from error
    return _Checked(name, timezone, definition)


def _cross_field(error: CalendarError) -> dict[str, str]:
    if error.field == "makeup_hours":
        return {"weekly.mon": MSG_MAKEUP_NEEDS_MONDAY}
    if error.field == "makeup_working_days":
        detail = _message(error).rpartition(": ")[2]
        return {"makeup_working_days": f"{MSG_MAKEUP_CLASH}: {detail}"}
    return {error.field: _message(error)}
