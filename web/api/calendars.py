"""Business calendars (GET for staff; POST, PUT and DELETE for the incident manager)."""

from __future__ import annotations

from flask import Response, jsonify

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Forbidden
from engine.services.sla import calendars as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services
from web.api.openapi import Reply, operation
from web.api.schemas import array, ref

TAGS = ["sla"]
NAME = {"name": "the calendar's name (24x7 is built in)"}
STAFF = "business calendars are for staff"
EDITOR = "only the incident manager changes business calendars; 24x7 cannot be changed"
INVALID = "invalid calendar: `details` names each field (`weekly.mon` for one day)"


def _require_staff() -> None:
    if not current_actor().has_any(STAFF_ROLES):
        raise Forbidden("business calendars are for staff")


@api_blueprint.get("/sla/calendars")
@operation(
    summary="Every business calendar, 24x7 first",
    tags=TAGS,
    responses={200: array(ref("Calendar")), 403: STAFF},
)
def list_calendars() -> Response:
    _require_staff()
    return jsonify(use_cases.list_calendars(services()))


@api_blueprint.get("/sla/calendars/<name>")
@operation(
    summary="One business calendar",
    tags=TAGS,
    path=NAME,
    responses={200: ref("Calendar"), 403: STAFF, 404: "no such calendar"},
)
def get_calendar(name: str) -> Response:
    _require_staff()
    return jsonify(use_cases.get_calendar(services(), name))


@api_blueprint.post("/sla/calendars")
@operation(
    summary="Create a business calendar",
    tags=TAGS,
    request=ref("NewCalendar"),
    responses={
        201: ref("Calendar"),
        403: EDITOR,
        409: "a calendar with this name exists",
        422: INVALID,
    },
)
def create_calendar() -> tuple[Response, int]:
    actor = current_actor()
    use_cases.require_editor(actor)  # who is answered before the body is read
    return jsonify(use_cases.create_calendar(services(), actor, json_body())), 201


@api_blueprint.put("/sla/calendars/<name>")
@operation(
    summary="Replace a business calendar (for clocks started from now on)",
    tags=TAGS,
    path=NAME,
    request=ref("CalendarReplacement"),
    responses={200: ref("Calendar"), 403: EDITOR, 404: "no such calendar", 422: INVALID},
)
def replace_calendar(name: str) -> Response:
    actor = current_actor()
    # Who and which calendar are answered before the body is read.
    use_cases.require_changeable(services(), actor, name)
    return jsonify(use_cases.replace_calendar(services(), actor, name, json_body()))


@api_blueprint.delete("/sla/calendars/<name>")
@operation(
    summary="Delete a business calendar no SLA policy uses",
    tags=TAGS,
    path=NAME,
    responses={
        204: Reply("Deleted"),
        403: EDITOR,
        404: "no such calendar",
        409: "SLA policies use it: `details.used_by` lists their priorities",
    },
)
def delete_calendar(name: str) -> tuple[str, int]:
    use_cases.delete_calendar(services(), current_actor(), name)
    return "", 204
