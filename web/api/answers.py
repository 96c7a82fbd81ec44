"""The caller's own answers (contract Part 2): confirming the recovery and the survey.

Bearer tokens only, as the whole API: a signed caller link and the cookie it opens
are for the browser pages (web/ui/caller_link.py) and are never read here.
"""

from __future__ import annotations

from flask import Response, jsonify

from engine.services.incidents.caller_links import CallerRef
from engine.services.tasks import answers
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services
from web.api.openapi import Reply, operation
from web.api.schemas import BOOLEAN, STRING, body, ref

TAGS = ["incidents"]
ID = {"incident_id": "the incident's numeric id"}
NOT_VISIBLE = "no such incident, or not one you may see"
NOT_THE_CALLER = "you see the incident but are not its caller (the desk uses the task)"

CONFIRMATION = body(
    {
        "recovered": BOOLEAN,
        "comment": {"type": "string", "maxLength": answers.COMMENT_LIMIT},
    },
    required=("recovered",),
    closed=True,
)
SURVEY = body(
    {
        "satisfaction": {
            **STRING,
            "description": "an option of record_feedback's `satisfaction` field ('1'..'5')",
        },
        "feedback": STRING,
    },
    required=("satisfaction",),
    closed=True,
)


@api_blueprint.post("/incidents/<int:incident_id>/confirmation")
@operation(
    summary="The caller confirms the recovery (or not) while confirm_recovery is ready",
    tags=TAGS,
    path=ID,
    request=CONFIRMATION,
    responses={
        200: Reply("The incident as its caller sees it, events left out", ref("Incident")),
        403: NOT_THE_CALLER,
        404: NOT_VISIBLE,
        409: "confirm_recovery is not ready (`details.status` is the incident's status)",
        422: "`recovered` missing or not a boolean, `comment` too long, or an unknown field",
    },
)
def confirm(incident_id: int) -> Response:
    """Completes `confirm_recovery` with the caller as actor, even when a desk agent
    claimed it; `recovered: false` reopens the incident; `comment` becomes a note by
    the caller."""
    caller = CallerRef(actor=current_actor())
    return jsonify(answers.answer_confirmation(services(), caller, incident_id, json_body()))


@api_blueprint.post("/incidents/<int:incident_id>/survey")
@operation(
    summary="The caller answers the survey: closes the incident, or is kept after a closure",
    tags=TAGS,
    path=ID,
    request=SURVEY,
    responses={
        200: Reply("The incident as its caller sees it, events left out", ref("Incident")),
        403: NOT_THE_CALLER,
        404: NOT_VISIBLE,
        409: "no survey is open: record_feedback is not ready and the incident did not close "
        "without one within 30 days, or the late survey was already answered",
        422: "invalid values (`details` maps field id to message)",
    },
)
def survey(incident_id: int) -> Response:
    """Completes the ready `record_feedback` (which closes the incident); within 30 days
    after a closure without a survey, the answer is stored once (`survey_answered`)
    and the incident stays closed."""
    caller = CallerRef(actor=current_actor())
    return jsonify(answers.answer_survey(services(), caller, incident_id, json_body()))
