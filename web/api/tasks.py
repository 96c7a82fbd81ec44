from __future__ import annotations

from flask import Response, jsonify

from engine.services.tasks import commands as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services


@api_blueprint.get("/tasks")
def list_tasks() -> Response:
    return jsonify(use_cases.list_tasks(services(), current_actor()))


@api_blueprint.get("/tasks/<task_id>")
def get_task(task_id: str) -> Response:
    return jsonify(use_cases.get_task(services(), current_actor(), task_id))


@api_blueprint.post("/tasks/<task_id>/complete")
def complete_task(task_id: str) -> Response:
    actor = current_actor()
    return jsonify(use_cases.complete_task(services(), actor, task_id, json_body()))


@api_blueprint.post("/tasks/<task_id>/claim")
def claim(task_id: str) -> Response:
    return jsonify(use_cases.claim(services(), current_actor(), task_id))


@api_blueprint.post("/tasks/<task_id>/release")
def release(task_id: str) -> Response:
    return jsonify(use_cases.release(services(), current_actor(), task_id))


@api_blueprint.post("/tasks/<task_id>/assign")
def assign(task_id: str) -> Response:
    actor = current_actor()
    return jsonify(use_cases.assign(services(), actor, task_id, json_body()))
