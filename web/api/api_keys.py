"""API keys of integration users (admin): issue, list, revoke."""

from __future__ import annotations

from flask import Response, jsonify, request

from engine.services.people import api_keys as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services
from web.api.openapi import PAGING, Reply, operation
from web.api.schemas import INTEGER, STRING, TIME, answer, array, body, nullable

TAGS = ["people"]
ADMIN_ONLY = "only an admin manages API keys"
API_KEY = answer(
    {
        "id": INTEGER,
        "name": STRING,
        "username": STRING,
        "prefix": {**STRING, "description": "the key's first characters, to tell keys apart"},
        "created_by": STRING,
        "created_at": TIME,
        "expires_at": nullable(TIME),
        "revoked_at": nullable(TIME),
        "last_used_at": nullable(TIME),
    }
)
ISSUED_KEY = {
    **API_KEY,
    "properties": {**API_KEY["properties"], "key": {**STRING, "description": "shown only now"}},
    "required": [*API_KEY["required"], "key"],
}
NEW_KEY = body(
    {
        "username": {**STRING, "description": "an active user with the integration role"},
        "name": {**STRING, "minLength": 1, "maxLength": 100},
        "expires_at": {**TIME, "description": "optional; none: no expiry"},
    },
    required=("username", "name"),
    closed=True,
)


@api_blueprint.get("/api-keys")
@operation(
    summary="API keys, newest first (revoked ones say so)",
    tags=TAGS,
    query=PAGING,
    responses={
        200: answer({"items": array(API_KEY), "total": INTEGER}, optional=("total_exact",)),
        403: ADMIN_ONLY,
        422: "a query parameter is invalid",
    },
)
def list_api_keys() -> Response:
    return jsonify(use_cases.list_keys(services(), current_actor(), request.args.to_dict()))


@api_blueprint.post("/api-keys")
@operation(
    summary="Issue an API key to an integration user",
    tags=TAGS,
    request=NEW_KEY,
    responses={
        201: Reply("The key, shown this once", ISSUED_KEY),
        403: ADMIN_ONLY,
        422: "invalid fields (`details` names each)",
    },
)
def issue_api_key() -> tuple[Response, int]:
    actor = current_actor()
    return jsonify(use_cases.issue_key(services(), actor, json_body())), 201


@api_blueprint.delete("/api-keys/<int:key_id>")
@operation(
    summary="Revoke an API key (it stops working at once)",
    tags=TAGS,
    path={"key_id": "the key's id"},
    responses={200: API_KEY, 403: ADMIN_ONLY, 404: "no such key"},
)
def revoke_api_key(key_id: int) -> Response:
    return jsonify(use_cases.revoke_key(services(), current_actor(), key_id))
