from __future__ import annotations

from flask import Response, jsonify, request

from engine.services.incidents import commands as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services


@api_blueprint.post("/incidents")
def create_incident() -> tuple[Response, int]:
    actor = current_actor()
    return jsonify(use_cases.create_incident(services(), actor, json_body())), 201


@api_blueprint.get("/incidents")
def list_incidents() -> Response:
    actor = current_actor()
    args = request.args
    return jsonify(
        use_cases.list_incidents(
            services(),
            actor,
            status=args.get("status") or None,
            priority=args.get("priority") or None,
            limit=args.get("limit") or None,
            offset=args.get("offset") or None,
        )
    )


@api_blueprint.get("/incidents/<int:incident_id>")
def get_incident(incident_id: int) -> Response:
    return jsonify(use_cases.get_incident(services(), current_actor(), incident_id))


@api_blueprint.patch("/incidents/<int:incident_id>")
def patch_incident(incident_id: int) -> Response:
    actor = current_actor()
    return jsonify(use_cases.patch_incident(services(), actor, incident_id, json_body()))


@api_blueprint.get("/incidents/<int:incident_id>/notes")
def list_notes(incident_id: int) -> Response:
    return jsonify(use_cases.list_notes(services(), current_actor(), incident_id))


@api_blueprint.post("/incidents/<int:incident_id>/notes")
def add_note(incident_id: int) -> tuple[Response, int]:
    actor = current_actor()
    return jsonify(use_cases.add_note(services(), actor, incident_id, json_body())), 201


@api_blueprint.post("/incidents/<int:incident_id>/suspend")
def suspend(incident_id: int) -> Response:
    actor = current_actor()
    return jsonify(use_cases.suspend(services(), actor, incident_id, json_body()))


@api_blueprint.post("/incidents/<int:incident_id>/resume")
def resume(incident_id: int) -> Response:
    return jsonify(use_cases.resume(services(), current_actor(), incident_id))
