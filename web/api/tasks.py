from __future__ import annotations

from flask import Response, jsonify, request

from engine.domain.ids import MAX_ID
from engine.services.tasks import commands as use_cases
from engine.services.tasks import listing
from engine.services.tasks.listing import CLAIMED
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services, with_total
from web.api.openapi import PAGING, TOTAL_HEADER, Param, Reply, operation
from web.api.schemas import array, enum, ref

TAGS = ["tasks"]
ID = {"task_id": "the task's id (from /tasks or an incident's `tasks`)"}
NOT_FOUND = "no such task, or its incident is not one you may see"
NOT_YOURS = "the task belongs to a lane you are not in"
TAKEN = "the task is no longer ready, or another user has claimed it"


@api_blueprint.get("/tasks")
@operation(
    summary="Ready tasks of your lanes, oldest first, a page at a time",
    tags=TAGS,
    query=[
        Param("incident_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
        Param("record", {"type": "string", "maxLength": 20}),
        Param("lane", {"type": "string", "maxLength": 40}),
        Param("claimed", enum(CLAIMED)),
        *PAGING,
    ],
    responses={
        200: Reply(
            "One page; the total is in X-Total-Count",
            array(ref("TaskSummary")),
            headers=TOTAL_HEADER,
        ),
        422: "a query parameter is invalid (`details` names it)",
    },
)
def list_tasks() -> Response:
    listed = listing.list_tasks(services(), current_actor(), request.args)
    return with_total(jsonify(listed.items), listed.total)


@api_blueprint.get("/tasks/<task_id>")
@operation(
    summary="One task with its form",
    tags=TAGS,
    path=ID,
    responses={200: ref("Task"), 403: NOT_YOURS, 404: NOT_FOUND},
)
def get_task(task_id: str) -> Response:
    return jsonify(use_cases.get_task(services(), current_actor(), task_id))


@api_blueprint.post("/tasks/<task_id>/complete")
@operation(
    summary="Complete a task with its form's values; the process runs to its next wait",
    tags=TAGS,
    path=ID,
    request=ref("FormValues"),
    responses={
        200: Reply("The incident, events left out", ref("Incident")),
        403: NOT_YOURS,
        404: NOT_FOUND,
        409: TAKEN + "; or the incident kept changing while the step ran",
        422: "invalid form values (`details` maps field id to message), or a process "
        "script failed (`details` names the element)",
    },
)
def complete_task(task_id: str) -> Response:
    actor = current_actor()
    return jsonify(use_cases.complete_task(services(), actor, task_id, json_body()))


@api_blueprint.post("/tasks/<task_id>/claim")
@operation(
    summary="Claim a task: only you may complete it",
    tags=TAGS,
    path=ID,
    responses={200: ref("TaskSummary"), 403: NOT_YOURS, 404: NOT_FOUND, 409: TAKEN},
)
def claim(task_id: str) -> Response:
    return jsonify(use_cases.claim(services(), current_actor(), task_id))


@api_blueprint.post("/tasks/<task_id>/release")
@operation(
    summary="Release your claim",
    tags=TAGS,
    path=ID,
    responses={200: ref("TaskSummary"), 403: NOT_YOURS, 404: NOT_FOUND, 409: TAKEN},
)
def release(task_id: str) -> Response:
    return jsonify(use_cases.release(services(), current_actor(), task_id))


@api_blueprint.post("/tasks/<task_id>/assign")
@operation(
    summary="Assign a task to a member of its lane",
    tags=TAGS,
    path=ID,
    request=ref("Assignment"),
    responses={
        200: ref("TaskSummary"),
        403: NOT_YOURS,
        404: NOT_FOUND,
        409: TAKEN,
        422: "`username` missing, or not an active user of the task's lane",
    },
)
def assign(task_id: str) -> Response:
    actor = current_actor()
    return jsonify(use_cases.assign(services(), actor, task_id, json_body()))
