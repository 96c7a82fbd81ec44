"""Request helpers shared by the API views: services, bearer auth, JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from engine.services.context import Actor, ServiceContext
from engine.services.errors import BadRequest, Unauthorized
from engine.services.users import actor_for_token


def services() -> ServiceContext:
    return current_app.extensions["itsm"]  # type: ignore[no-any-return]


def current_actor() -> Actor:
    """The API never accepts the browser session: only a bearer token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("sign in: send 'Authorization: Bearer <token>'")
    return actor_for_token(services(), token.strip())


def json_body() -> Any:
    data = request.get_data(cache=False)
    if not data:
        raise BadRequest("the request needs a JSON body")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from exc
