"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of what the API reads and answers.

Each is written from the shape the services build (engine/services/**: `views.py`,
`as_dict`, `*_dict`), and tests/test_openapi.py validates real answers against them.
Answer objects stay open (more keys may come): a schema states the keys that are
always there and their types. Request bodies are closed where the service refuses an
unknown field (422), open where it ignores one.

`COMPONENTS` is what the document lists under `components/schemas`; views refer to a
component with `ref(...)` and may nest plain schemas.
"""

from __future__ import annotations

from typing import Any, get_args

from engine.domain.calendars import WEEKDAY_KEYS
from engine.domain.forms import ALLOWED_FIELD_TYPES
from engine.domain.ids import MAX_ID
from engine.domain.sla import ClockStateName, SegmentMode
from engine.services.incidents.commands import (
    CHANNELS,
    NOTE_LIMIT,
    STATUSES,
    SUSPEND_CATEGORIES,
    TEXT_LIMITS,
)
from engine.services.incidents.pages import PHASES
from engine.services.revision.migration import MAX_PER_REQUEST
from engine.services.sla.clocks import STAGES
from engine.services.sla.policies import MAX_SECONDS, PRIORITIES
from engine.services.sla.thresholds import MARKS
from engine.workflow.diff import ASPECTS

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
TEXT: Schema = {"type": "string", "minLength": 1}
# Text the service strips first: blank is as good as missing.
NOT_BLANK: Schema = {"type": "string", "pattern": "\\S"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time", "description": "ISO 8601 with offset"}
DATE: Schema = {"type": "string", "format": "date"}
PRIORITY: Schema = {"type": "integer", "minimum": min(PRIORITIES), "maximum": max(PRIORITIES)}
LEVEL: Schema = {"type": "integer", "minimum": 1, "maximum": 3}
SECONDS: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_SECONDS}
# A row id or version: what an id column holds (engine/domain/ids.py).
ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}


def ref(name: str) -> Schema:
    """A reference to a component (views use this; a misspelt name fails at import)."""
    if name not in COMPONENTS:
        raise KeyError(f"no schema component {name!r}")
    return _ref(name)


def _ref(name: str) -> Schema:
    # Inside this module, before COMPONENTS exists; the document test resolves each one.
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema, **keywords: Any) -> Schema:
    return {"type": "array", "items": items, **keywords}


def answer(properties: dict[str, Schema], *, optional: tuple[str, ...] = (), **kw: Any) -> Schema:
    """An object the API answers: every property is there unless listed as optional."""
    required = [name for name in properties if name not in optional]
    return {"type": "object", "properties": properties, "required": required, **kw}


def body(properties: dict[str, Schema], *, required: tuple[str, ...] = (), closed: bool) -> Schema:
    """An object the API reads; `closed`: the service refuses unknown fields."""
    schema: Schema = {"type": "object", "properties": properties, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def enum(values: tuple[str, ...] | list[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


# --- errors and small pieces ---------------------------------------------------------

_BPMN_PROBLEM = answer(
    {
        "element": nullable(STRING),
        "line": nullable(INTEGER),
        "message": STRING,
        "level": {"type": "string", "enum": ["error", "warning"]},
    },
    optional=("level",),
    description="One problem of a BPMN document, on its element and line when known; a "
    "warning (a missing translation) does not stop a deployment.",
)
_ERROR = answer(
    {
        "error": STRING,
        "details": {
            "description": "For invalid fields an object mapping each field to its message "
            "(dotted for nested ones, e.g. `stages.level2.calendar`); for BPMN a list of "
            "problems; for 429 `{retry_after}`; else null or an object of facts.",
            "anyOf": [
                {"type": "null"},
                {"type": "object"},
                array(_ref("BpmnProblem")),
            ],
        },
    },
    description="Every error: a message and its details.",
)
_TOKEN = answer(
    {
        "token": STRING,
        "expires_at": TIME,
        "must_change_password": BOOLEAN,
    },
    optional=("must_change_password",),
    description="A bearer token; `must_change_password` (on sign-in) says the token opens "
    "only POST /auth/password until the password is changed.",
)

# --- incidents ----------------------------------------------------------------------

_SUMMARY_PROPERTIES: dict[str, Schema] = {
    "id": INTEGER,
    "number": {"type": "string", "examples": ["INC-000123"]},
    "title": STRING,
    "channel": enum(CHANNELS),
    "category": nullable(STRING),
    "status": enum(STATUSES),
    "phase": enum(PHASES),
    "priority": nullable(PRIORITY),
    "impact": nullable(LEVEL),
    "urgency": nullable(LEVEL),
    "major": BOOLEAN,
    "created_at": TIME,
    "updated_at": TIME,
    "resolution_due": nullable(TIME),
}
_POLICY_IN_FORCE = answer(
    {
        "priority": PRIORITY,
        "version": nullable(INTEGER),
        "calendar": STRING,
        "response_seconds": nullable(INTEGER),
        "resolution_seconds": nullable(INTEGER),
    }
)
_CLOCK_SEGMENT = answer(
    {
        "start": TIME,
        "end": TIME,
        "mode": enum(get_args(SegmentMode)),
        "wall_seconds": NUMBER,
        "working_seconds": NUMBER,
        "non_working_seconds": NUMBER,
        "elapsed_after": NUMBER,
    }
)
_CLOCK = answer(
    {
        "clock": {"type": "string", "description": "response, resolution, or a stage"},
        "state": enum(get_args(ClockStateName)),
        "target_seconds": NUMBER,
        "elapsed_seconds": NUMBER,
        "percent": NUMBER,
        "due_at": nullable(TIME),
        "breached": BOOLEAN,
        "breached_at": nullable(TIME),
        "paused_seconds": NUMBER,
        "priority": PRIORITY,
        "priority_assumed": BOOLEAN,
        "policy_version": nullable(INTEGER),
        "calendar": STRING,
        "announced": array({"type": "integer", "enum": list(MARKS)}),
        "segments": array(_CLOCK_SEGMENT),
        "due": answer(
            {"remaining_seconds": NUMBER, "calendar": STRING, "reason": STRING, "text": STRING}
        ),
    },
    description="One SLA clock with the figures that explain it (staff only).",
)
_PERSON_SUSPENDED = answer(
    {"username": STRING, "suspensions": INTEGER, "seconds": NUMBER, "incidents": INTEGER}
)
_INCIDENT_SUSPENSIONS = answer(
    {
        "periods": array(
            answer(
                {
                    "by": STRING,
                    "category": nullable(STRING),
                    "start": TIME,
                    "end": nullable(TIME),
                    "resumed_by": nullable(STRING),
                    "seconds": NUMBER,
                }
            )
        ),
        "per_person": array(_PERSON_SUSPENDED),
    }
)
_SLA = answer(
    {
        "response_due": nullable(TIME),
        "resolution_due": nullable(TIME),
        "suspended": BOOLEAN,
        "suspended_seconds": NUMBER,
        "breached": BOOLEAN,
        "policy": nullable(_POLICY_IN_FORCE),
        "clocks": array(_ref("Clock")),
        "suspensions": _INCIDENT_SUSPENSIONS,
    },
    optional=("clocks", "suspensions"),
    description="The incident's SLA; `clocks` and `suspensions` only for staff.",
)
_EVENT = answer(
    {"at": TIME, "actor": STRING, "type": STRING, "task": STRING},
    optional=("task",),
    description="One entry of the incident's history; more keys depend on `type` "
    "(e.g. `clock` and `percent` on sla_warning).",
)
_LINKED_RECORD = answer(
    {
        "kind": STRING,
        "number": STRING,
        "title": STRING,
        "status": STRING,
        "creator": STRING,
        "created_at": TIME,
    }
)
_TASK_SUMMARY = answer(
    {
        "id": STRING,
        "name": {"type": "string", "description": "the BPMN task id"},
        "label": STRING,
        "lane": STRING,
        "incident_id": INTEGER,
        "number": STRING,
        "title": STRING,
        "priority": nullable(PRIORITY),
        "claimed_by": nullable(STRING),
        "created_at": TIME,
        "vendor_org": {
            **nullable(STRING),
            "description": "a vendor task's organisation (staff only)",
        },
    },
    optional=("vendor_org",),
    description="A ready user task; `claimed_by` is a username, or a lane role for "
    "callers and vendors.",
)
_INCIDENT = answer(
    {
        **_SUMMARY_PROPERTIES,
        "description": STRING,
        "contact": STRING,
        "reporter": STRING,
        "caller": answer(
            {"username": nullable(STRING), "email": nullable(STRING)},
            description="whose incident it is: a user, or an address only",
        ),
        "resolved_at": nullable(TIME),
        "closed_at": nullable(TIME),
        "error": nullable(STRING),
        "sla": _ref("Sla"),
        "tasks": array(_ref("TaskSummary")),
        "links": array(_ref("LinkedRecord")),
        "process": answer({"key": STRING, "version": INTEGER}),
        # The component is registered by web/api/attachments.py.
        "attachments": array(_ref("Attachment")),
        "events": array(_ref("Event")),
        "events_total": INTEGER,
    },
    optional=("events", "events_total"),
    description="One incident as its reader may see it: the newest 100 events of its "
    "history, in time order, and `events_total` (GET /incidents/ID/events pages through "
    "all). `events` is left out of the answers to changes (complete, patch, suspend, "
    "resume).",
)
_NEW_INCIDENT = body(
    {
        "title": {**NOT_BLANK, "maxLength": TEXT_LIMITS["title"]},
        "description": {"type": ["string", "null"], "maxLength": TEXT_LIMITS["description"]},
        "contact": {"type": ["string", "null"], "maxLength": TEXT_LIMITS["contact"]},
        "channel": enum(CHANNELS),
        "caller": {**NOT_BLANK, "description": "staff and integration only: the caller's "
                   "username (else the creating user is the caller)"},
        "caller_email": {"type": "string", "format": "email", "maxLength": 254,
                         "description": "staff and integration only, instead of `caller`: "
                         "a user's address makes that user the caller"},
        "dedup_key": {**NOT_BLANK, "maxLength": 200,
                      "description": "integration only: while an incident with this key is "
                      "open, the report becomes a note on it (200)"},
    },
    required=("title", "channel"),
    closed=True,
)
_CLASSIFICATION = body(
    {
        "impact": enum(("1", "2", "3")),
        "urgency": enum(("1", "2", "3")),
        "category": {**TEXT, "description": "an option of record_incident's form"},
        "title": {**NOT_BLANK, "maxLength": TEXT_LIMITS["title"]},
        "description": {"type": ["string", "null"], "maxLength": TEXT_LIMITS["description"]},
        "contact": {"type": ["string", "null"], "maxLength": TEXT_LIMITS["contact"]},
    },
    closed=True,
)
_CLASSIFICATION["minProperties"] = 1  # nothing to change → 422
_NOTE = answer(
    {
        "id": INTEGER,
        "at": TIME,
        "author": STRING,
        "text": STRING,
        "internal": BOOLEAN,
        "vendor": BOOLEAN,
        "via": {**nullable(STRING), "description": "the integration user that carried it"},
    },
    optional=("vendor", "via"),
)
_NEW_NOTE = body(
    {
        "text": {**NOT_BLANK, "maxLength": NOTE_LIMIT},
        "internal": {"type": "boolean", "default": False, "description": "staff only"},
        "on_behalf_of": {**NOT_BLANK, "description": "integration only: the incident's "
                         "caller (username or e-mail); the note counts as theirs"},
    },
    required=("text",),
    closed=False,
)
_SUSPENSION = body(
    {
        "reason": {**NOT_BLANK, "maxLength": NOTE_LIMIT},
        "category": nullable(enum(SUSPEND_CATEGORIES)),
        "resume_by": nullable({**TIME, "description": "in the future; resumed then"}),
    },
    required=("reason",),
    closed=True,
)

# --- tasks ---------------------------------------------------------------------------

_FORM_FIELD = answer(
    {
        "id": STRING,
        "label": STRING,
        "type": enum(ALLOWED_FIELD_TYPES),
        "required": BOOLEAN,
        "required_if": nullable(STRING),
        "readonly": BOOLEAN,
        "multiline": BOOLEAN,
        "options": array(answer({"id": STRING, "name": STRING})),
        "default": {"description": "the field's default value, or null"},
        "constraints": {
            "type": "object",
            "properties": {k: NUMBER for k in ("minlength", "maxlength", "min", "max")},
        },
    }
)
_TASK = {
    **_TASK_SUMMARY,
    "properties": {
        **_TASK_SUMMARY["properties"],
        "state": enum(("ready", "completed", "cancelled")),
        "documentation": nullable(STRING),
        "phase": nullable(STRING),
        "form": answer({"fields": array(_ref("FormField"))}),
    },
    "required": [*_TASK_SUMMARY["required"], "state", "documentation", "phase", "form"],
    "description": "A user task with the form its BPMN defines.",
}
_FORM_VALUES = {
    "type": "object",
    "description": "Form field id → value: enum → the option id (string), long → "
    "integer, boolean → true/false, date → YYYY-MM-DD. Unknown fields → 422.",
    "additionalProperties": {"type": ["string", "integer", "boolean", "null"]},
}
_ASSIGNMENT = body({"username": TEXT}, required=("username",), closed=False)

# --- process definitions, drafts, revision -----------------------------------------

_DEFINITION = answer(
    {"key": STRING, "version": INTEGER, "deployed_at": TIME, "deployed_by": STRING, "note": STRING}
)
_DEPLOYED = answer({"key": STRING, "version": INTEGER})
_ELEMENT_CHANGE = answer(
    {
        "element_id": STRING,
        "kind": STRING,
        "name": nullable(STRING),
        "aspects": array(enum(ASPECTS)),
        "details": array(STRING),
        "layout_only": BOOLEAN,
    }
)
_VERSION_DIFF = answer(
    {
        "key": STRING,
        "from": INTEGER,
        "to": INTEGER,
        "added": array(_ref("ElementChange")),
        "removed": array(_ref("ElementChange")),
        "changed": array(_ref("ElementChange")),
    }
)
_MIGRATION_CANDIDATE = answer(
    {
        "incident_id": INTEGER,
        "number": STRING,
        "version": INTEGER,
        "position": array(STRING, description="the BPMN ids where it waits"),
        "can_move": BOOLEAN,
        "reason": STRING,
    }
)
_MIGRATION_REQUEST = body(
    {
        "incident_ids": array(ID, minItems=1, maxItems=MAX_PER_REQUEST)
    },
    required=("incident_ids",),
    closed=True,
)
_MIGRATION_OUTCOME = answer({"incident_id": INTEGER, "ok": BOOLEAN, "reason": STRING})
_DRAFT_PROPERTIES: dict[str, Schema] = {
    "id": INTEGER,
    "name": STRING,
    "based_on_version": nullable(INTEGER),
    "created_by": STRING,
    "created_at": TIME,
    "updated_by": STRING,
    "updated_at": TIME,
    "deployed_version": nullable(INTEGER),
    "revision": {"type": "integer", "description": "send it back on PUT; stale → 409"},
}
_DRAFT_SUMMARY = answer(_DRAFT_PROPERTIES)
_DRAFT = answer({**_DRAFT_PROPERTIES, "xml": {"type": "string", "description": "BPMN XML"}})
_DRAFT_PROBLEMS = answer(
    {"problems": array(_ref("BpmnProblem")), "deployable": BOOLEAN}
)
_SLA_OUTCOME = answer(
    {"priority": PRIORITY, "response_breached": BOOLEAN, "resolution_breached": BOOLEAN}
)
_WHAT_IF_INCIDENT = answer(
    {
        "incident_id": INTEGER,
        "number": STRING,
        "version": INTEGER,
        "steps_replayed": INTEGER,
        "same_route": BOOLEAN,
        "diverged": nullable(
            answer(
                {
                    "step": INTEGER,
                    "at": nullable(TIME),
                    "recorded": nullable(STRING),
                    "draft_offers": array(STRING),
                    "reason": STRING,
                }
            )
        ),
        "priority": answer({"recorded": nullable(PRIORITY), "draft": nullable(PRIORITY)}),
        "sla": {
            "type": "object",
            "properties": {"recorded": _SLA_OUTCOME, "draft": _SLA_OUTCOME},
        },
    }
)
_WHAT_IF = answer(
    {
        "draft_id": INTEGER,
        "replayed": INTEGER,
        "same_route": INTEGER,
        "stopped": nullable({"type": "string", "description": "why the budget ran out"}),
        "incidents": array(_ref("WhatIfIncident")),
    },
    description="The recorded decisions of recently closed incidents replayed on a draft.",
)

# --- SLA policies, calendars, suspended time ---------------------------------------

_STAGE_TARGET = answer({"target_seconds": INTEGER, "calendar": nullable(STRING)})
_SLA_POLICY = answer(
    {
        "priority": PRIORITY,
        "response_seconds": INTEGER,
        "resolution_seconds": INTEGER,
        "calendar": STRING,
        "version": INTEGER,
        "stages": answer({stage: nullable(_STAGE_TARGET) for stage in STAGES}),
    },
    description="The targets of one priority; a stage without a target is null.",
)
_STAGE_CHANGE = nullable(
    {
        **body({"target_seconds": SECONDS, "calendar": nullable(TEXT)}, closed=True),
        "minProperties": 1,
    }
)
_SLA_POLICY_CHANGE = body(
    {
        "response_seconds": SECONDS,
        "resolution_seconds": SECONDS,
        "calendar": {"type": "string", "minLength": 1, "description": "24x7 or a calendar name"},
        "stages": {
            "type": "object",
            "properties": {stage: _STAGE_CHANGE for stage in STAGES},
            "additionalProperties": False,
            "description": "null removes a stage's target",
        },
    },
    closed=True,
)
_SLA_POLICY_CHANGE["minProperties"] = 1  # nothing to change → 422
_PERIOD = answer({"start": STRING, "end": STRING}, description="HH:MM to HH:MM (24:00 ends)")
_WEEKLY = answer({day: array(_PERIOD) for day in WEEKDAY_KEYS})
_CALENDAR = answer(
    {
        "name": STRING,
        "timezone": STRING,
        "weekly": _WEEKLY,
        "holidays": array(DATE),
        "extra_days_off": array(DATE),
        "makeup_working_days": array(DATE),
        "use_taiwan_holidays": BOOLEAN,
        "builtin": BOOLEAN,
        "used_by": array(PRIORITY),
    },
    description="A business calendar; `used_by` lists the priorities counting in it.",
)
_CLOCK_TIME = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
_PERIOD_INPUT = body(
    {
        "start": {"type": "string", "pattern": _CLOCK_TIME},
        "end": {"type": "string", "pattern": f"{_CLOCK_TIME}|^24:00$"},
    },
    required=("start", "end"),
    closed=True,
)
_WEEKLY_INPUT = {
    "type": "object",
    "properties": {day: array(_PERIOD_INPUT) for day in WEEKDAY_KEYS},
    "additionalProperties": False,
    "anyOf": [
        {"required": [day], "properties": {day: {"minItems": 1}}} for day in WEEKDAY_KEYS
    ],
    "description": "working hours per weekday (at least one day); each period starts "
    "before it ends and periods of a day do not overlap",
}


def _calendar_input(*, name_required: bool) -> Schema:
    return body(
        {
            "name": {"type": "string", "pattern": "^[a-z0-9_]{1,80}$", "not": {"const": "24x7"}},
            "timezone": {**TEXT, "description": "an IANA time zone", "examples": ["Asia/Taipei"]},
            "weekly": _WEEKLY_INPUT,
            "holidays": array(DATE),
            "extra_days_off": array(DATE),
            "makeup_working_days": array(DATE, description="worked with Monday's hours"),
            "use_taiwan_holidays": {"type": "boolean", "default": True},
            "builtin": {"description": "read-only: ignored"},
            "used_by": {"description": "read-only: ignored"},
        },
        required=("name", "timezone", "weekly") if name_required else ("timezone", "weekly"),
        closed=True,
    )


_SUSPENSION_REPORT = answer(
    {
        "since": nullable(TIME),
        "until": TIME,
        "people": array(_ref("PersonSuspended")),
        "total_seconds": NUMBER,
    },
    description="Suspended time per person (who suspended), longest first.",
)

COMPONENTS: dict[str, Schema] = {
    "Error": _ERROR,
    "BpmnProblem": _BPMN_PROBLEM,
    "Credentials": body({"username": TEXT, "password": TEXT}, required=("username", "password"),
                        closed=False),
    "PasswordChange": body(
        {"current_password": TEXT, "new_password": TEXT},
        required=("current_password", "new_password"),
        closed=False,
    ),
    "Token": _TOKEN,
    "IncidentSummary": answer(_SUMMARY_PROPERTIES),
    "IncidentPage": answer({"items": array(_ref("IncidentSummary")),
                            "total": INTEGER}),
    "Incident": _INCIDENT,
    "NewIncident": _NEW_INCIDENT,
    "Classification": _CLASSIFICATION,
    "Sla": _SLA,
    "Clock": _CLOCK,
    "Event": _EVENT,
    "LinkedRecord": _LINKED_RECORD,
    "Note": _NOTE,
    "NewNote": _NEW_NOTE,
    "Suspension": _SUSPENSION,
    "TaskSummary": _TASK_SUMMARY,
    "Task": _TASK,
    "FormField": _FORM_FIELD,
    "FormValues": _FORM_VALUES,
    "Assignment": _ASSIGNMENT,
    "ProcessDefinition": _DEFINITION,
    "DeployedVersion": _DEPLOYED,
    "ElementChange": _ELEMENT_CHANGE,
    "VersionDiff": _VERSION_DIFF,
    "MigrationCandidate": _MIGRATION_CANDIDATE,
    "MigrationRequest": _MIGRATION_REQUEST,
    "MigrationOutcome": _MIGRATION_OUTCOME,
    "DraftSummary": _DRAFT_SUMMARY,
    "Draft": _DRAFT,
    "DraftProblems": _DRAFT_PROBLEMS,
    "WhatIfReport": _WHAT_IF,
    "WhatIfIncident": _WHAT_IF_INCIDENT,
    "SlaPolicy": _SLA_POLICY,
    "SlaPolicyChange": _SLA_POLICY_CHANGE,
    "Calendar": _CALENDAR,
    "NewCalendar": _calendar_input(name_required=True),
    "CalendarReplacement": {
        **_calendar_input(name_required=False),
        "description": "every field of the calendar; `name`, if given, is the path's",
    },
    "SuspensionReport": _SUSPENSION_REPORT,
    "PersonSuspended": _PERSON_SUSPENDED,
}
