"""GET /api/v1/me: who the bearer is, with their address and language (contract
Part 2: a user's `email` and `language`)."""

from __future__ import annotations

from flask import Response, jsonify

from engine.services.people.profiles import LANGUAGES, profile_of
from web.api import api_blueprint
from web.api.common import current_actor, services
from web.api.openapi import operation
from web.api.schemas import BOOLEAN, STRING, answer, array, enum, nullable

ME = answer(
    {
        "username": STRING,
        "display_name": STRING,
        "email": nullable(STRING),
        "language": enum(LANGUAGES),
        "timezone": STRING,
        "notify_task_ready": {**BOOLEAN, "description": "mail when a task they may take is ready"},
        "roles": array(STRING),
    }
)


@api_blueprint.get("/me")
@operation(
    summary="The signed-in user: address, language, preferences and roles",
    tags=["people"],
    responses={200: ME},
)
def me() -> Response:
    return jsonify(profile_of(services(), current_actor()))
