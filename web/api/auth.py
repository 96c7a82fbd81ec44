from __future__ import annotations

from flask import Response, jsonify

from engine.services.errors import Invalid
from engine.services.people.users import issue_token
from web.api import api_blueprint
from web.api.common import json_body, services


@api_blueprint.post("/auth/token")
def create_token() -> tuple[Response, int]:
    body = json_body()
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", {})
    username, password = body.get("username"), body.get("password")
    errors = {
        name: "is required"
        for name, value in (("username", username), ("password", password))
        if not isinstance(value, str) or not value
    }
    if errors:
        raise Invalid("invalid credentials", errors)
    issued = issue_token(services(), str(username), str(password))
    return jsonify({"token": issued.token, "expires_at": issued.expires_at.isoformat()}), 200
