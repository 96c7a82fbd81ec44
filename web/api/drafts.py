"""Process drafts over the API: designers edit, check and deploy; the incident manager reads."""

from __future__ import annotations

from dataclasses import replace

from flask import Response, jsonify, request

from engine.services.process import definitions
from engine.services.process import drafts as use_cases
from engine.services.revision import what_if as replay
from web.api import api_blueprint
from web.api.common import bpmn_body, current_actor, services
from web.api.openapi import BPMN_UPLOAD, Param, Reply, operation
from web.api.schemas import STRING, array, ref

TAGS = ["process drafts"]
ID = {"draft_id": "the draft's id"}
READERS = "drafts are for process designers and the incident manager"
DESIGNERS = "only process designers edit and deploy drafts"
NO_DRAFT = "no such draft"


def _revision() -> int | str:
    raw = request.args.get("revision", "")
    return int(raw) if raw.isdigit() else raw


@api_blueprint.get("/process-drafts")
@operation(
    summary="Every draft, last changed first",
    tags=TAGS,
    responses={200: array(ref("DraftSummary")), 403: READERS},
)
def list_drafts() -> Response:
    return jsonify(use_cases.list_drafts(services(), current_actor()))


@api_blueprint.post("/process-drafts")
@operation(
    summary="New draft: the uploaded BPMN, or (empty body) a copy of the latest version",
    tags=TAGS,
    request=replace(BPMN_UPLOAD, required=False),
    query=[Param("name", STRING, "the draft's name (at most 200 characters)")],
    responses={
        201: ref("DraftSummary"),
        403: DESIGNERS,
        404: "no version is deployed to copy",
        422: "not a BPMN document that can be saved (`details` lists the problem), over "
        "5 MiB, or a name too long",
    },
)
def create_draft() -> tuple[Response, int]:
    actor = current_actor()
    use_cases.require_designer(actor)
    body = bpmn_body()
    draft = use_cases.create_draft(services(), actor, request.args.get("name"), body or None)
    return jsonify(draft), 201


@api_blueprint.get("/process-drafts/<int:draft_id>")
@operation(
    summary="One draft with its BPMN XML",
    tags=TAGS,
    path=ID,
    responses={200: ref("Draft"), 403: READERS, 404: NO_DRAFT},
)
def get_draft(draft_id: int) -> Response:
    return jsonify(use_cases.get_draft(services(), current_actor(), draft_id))


@api_blueprint.put("/process-drafts/<int:draft_id>")
@operation(
    summary="Save the draft's diagram (problems allowed; checked on deploy)",
    tags=TAGS,
    path=ID,
    request=BPMN_UPLOAD,
    query=[
        Param("revision", {"type": "integer", "minimum": 0}, "the revision you started from",
              required=True)
    ],
    responses={
        200: ref("DraftSummary"),
        403: DESIGNERS,
        404: NO_DRAFT,
        409: "saved by someone else meanwhile (a newer revision); reload it",
        422: "not a BPMN document that can be saved, over 5 MiB, or `revision` missing",
    },
)
def save_draft(draft_id: int) -> Response:
    actor = current_actor()
    use_cases.require_designer(actor)
    draft = use_cases.save_draft(services(), actor, draft_id, bpmn_body(), _revision())
    return jsonify(draft)


@api_blueprint.get("/process-drafts/<int:draft_id>/problems")
@operation(
    summary="Every problem a deployment would refuse",
    tags=TAGS,
    path=ID,
    responses={200: ref("DraftProblems"), 403: READERS, 404: NO_DRAFT},
)
def draft_problems(draft_id: int) -> Response:
    problems = use_cases.validate_draft(services(), current_actor(), draft_id)
    return jsonify({"problems": problems, "deployable": definitions.deployable(problems)})


@api_blueprint.post("/process-drafts/<int:draft_id>/deploy")
@operation(
    summary="Deploy the draft as a new version",
    tags=TAGS,
    path=ID,
    query=[Param("note", STRING, "what changed and why")],
    responses={
        201: ref("DeployedVersion"),
        403: DESIGNERS,
        404: NO_DRAFT,
        409: "other deployments of this process ran at the same time; retry",
        422: "the draft has problems: `details` lists them",
    },
)
def deploy_draft(draft_id: int) -> tuple[Response, int]:
    info = use_cases.deploy_draft(
        services(), current_actor(), draft_id, request.args.get("note", "")
    )
    return jsonify({"key": info.key, "version": info.version}), 201


@api_blueprint.delete("/process-drafts/<int:draft_id>")
@operation(
    summary="Delete a draft",
    tags=TAGS,
    path=ID,
    responses={204: Reply("Deleted"), 403: DESIGNERS, 404: NO_DRAFT},
)
def delete_draft(draft_id: int) -> tuple[str, int]:
    use_cases.delete_draft(services(), current_actor(), draft_id)
    return "", 204


@api_blueprint.get("/process-drafts/<int:draft_id>/what-if")
@operation(
    summary="What-if: replay recently closed incidents on the draft",
    tags=TAGS,
    path=ID,
    query=[Param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 20},
                 "how many closed incidents, newest first")],
    responses={
        200: ref("WhatIfReport"),
        403: READERS,
        404: NO_DRAFT,
        422: "`limit` out of range, or the draft has problems (`details` lists them)",
        429: "your previous what-if, or too many heavy reads, still running",
    },
)
def what_if(draft_id: int) -> Response:
    """Replay the last `limit` closed incidents on the draft."""
    actor = current_actor()
    limit = replay.parse_limit(request.args.get("limit"))
    return jsonify(replay.replay_draft(services(), actor, draft_id, limit))
