"""Business calendars (GET for staff; POST, PUT and DELETE for the incident manager)."""

from __future__ import annotations

from flask import Response, jsonify

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Forbidden
from engine.services.sla import calendars as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services


def _require_staff() -> None:
    if not current_actor().has_any(STAFF_ROLES):
        raise Forbidden("business calendars are for staff")


@api_blueprint.get("/sla/calendars")
def list_calendars() -> Response:
    _require_staff()
    return jsonify(use_cases.list_calendars(services()))


@api_blueprint.get("/sla/calendars/<name>")
def get_calendar(name: str) -> Response:
    _require_staff()
    return jsonify(use_cases.get_calendar(services(), name))


@api_blueprint.post("/sla/calendars")
def create_calendar() -> tuple[Response, int]:
    actor = current_actor()
    use_cases.require_editor(actor)  # who is answered before the body is read
    return jsonify(use_cases.create_calendar(services(), actor, json_body())), 201


@api_blueprint.put("/sla/calendars/<name>")
def replace_calendar(name: str) -> Response:
    actor = current_actor()
    # Who and which calendar are answered before the body is read.
    use_cases.require_changeable(services(), actor, name)
    return jsonify(use_cases.replace_calendar(services(), actor, name, json_body()))


@api_blueprint.delete("/sla/calendars/<name>")
def delete_calendar(name: str) -> tuple[str, int]:
    use_cases.delete_calendar(services(), current_actor(), name)
    return "", 204
