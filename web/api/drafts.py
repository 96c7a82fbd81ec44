"""Process drafts over the API: designers edit, check and deploy; the incident manager reads."""

from __future__ import annotations

from flask import Response, jsonify, request

from engine.services.process import drafts as use_cases
from engine.services.revision import what_if as replay
from web.api import api_blueprint
from web.api.common import bpmn_body, current_actor, services


def _revision() -> int | str:
    raw = request.args.get("revision", "")
    return int(raw) if raw.isdigit() else raw


@api_blueprint.get("/process-drafts")
def list_drafts() -> Response:
    return jsonify(use_cases.list_drafts(services(), current_actor()))


@api_blueprint.post("/process-drafts")
def create_draft() -> tuple[Response, int]:
    actor = current_actor()
    use_cases.require_designer(actor)
    body = bpmn_body()
    draft = use_cases.create_draft(services(), actor, request.args.get("name"), body or None)
    return jsonify(draft), 201


@api_blueprint.get("/process-drafts/<int:draft_id>")
def get_draft(draft_id: int) -> Response:
    return jsonify(use_cases.get_draft(services(), current_actor(), draft_id))


@api_blueprint.put("/process-drafts/<int:draft_id>")
def save_draft(draft_id: int) -> Response:
    actor = current_actor()
    use_cases.require_designer(actor)
    draft = use_cases.save_draft(services(), actor, draft_id, bpmn_body(), _revision())
    return jsonify(draft)


@api_blueprint.get("/process-drafts/<int:draft_id>/problems")
def draft_problems(draft_id: int) -> Response:
    problems = use_cases.validate_draft(services(), current_actor(), draft_id)
    return jsonify({"problems": problems, "deployable": not problems})


@api_blueprint.post("/process-drafts/<int:draft_id>/deploy")
def deploy_draft(draft_id: int) -> tuple[Response, int]:
    info = use_cases.deploy_draft(
        services(), current_actor(), draft_id, request.args.get("note", "")
    )
    return jsonify({"key": info.key, "version": info.version}), 201


@api_blueprint.delete("/process-drafts/<int:draft_id>")
def delete_draft(draft_id: int) -> tuple[str, int]:
    use_cases.delete_draft(services(), current_actor(), draft_id)
    return "", 204


@api_blueprint.get("/process-drafts/<int:draft_id>/what-if")
def what_if(draft_id: int) -> Response:
    """Replay the last `limit` closed incidents on the draft."""
    actor = current_actor()
    limit = replay.parse_limit(request.args.get("limit"))
    return jsonify(replay.replay_draft(services(), actor, draft_id, limit))
