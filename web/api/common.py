"""Request helpers shared by the API views: services, bearer auth, JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request

from engine.domain.text import TooDeep, json_text_problems
from engine.services.context import Actor, ServiceContext
from engine.services.errors import BadRequest, Forbidden, Invalid, Unauthorized
from engine.services.paging import Total
from engine.services.people.api_keys import actor_for_api_key, is_api_key
from engine.services.people.users import actor_for_token
from engine.workflow.safe_xml import MAX_BPMN_BYTES


def services() -> ServiceContext:
    return current_app.extensions["itsm"]  # type: ignore[no-any-return]


def current_actor(*, password_change: bool = False) -> Actor:
    """The API never accepts the browser session: only a bearer token or API key.
    `password_change`: the one call a user whose password was reset may make."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("sign in: send 'Authorization: Bearer <token>'")
    token = token.strip()
    if is_api_key(token):
        if password_change:
            raise Forbidden("an API key has no password to change; sign in as the user")
        return actor_for_api_key(services(), token)
    return actor_for_token(services(), token, password_change=password_change)


def json_body() -> Any:
    data = request.get_data(cache=False)
    if not data:
        raise BadRequest("the request needs a JSON body")
    try:
        value = json.loads(data)
    except RecursionError as exc:
        raise BadRequest("malformed JSON: nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from exc
    try:
        problems = json_text_problems(value)
    except TooDeep as exc:
        raise BadRequest(f"malformed JSON: {exc}") from exc
    if problems:
        raise Invalid("invalid text", problems)
    return value


def bpmn_body() -> bytes:
    """The request body as BPMN bytes, refused (422, as the contract says) when oversize."""
    request.max_content_length = None
    too_large = (request.content_length or 0) > MAX_BPMN_BYTES
    body = b"" if too_large else request.stream.read(MAX_BPMN_BYTES + 1)
    if too_large or len(body) > MAX_BPMN_BYTES:
        raise Invalid(
            "the BPMN is too large",
            [{"element": None, "line": None, "message": f"larger than {MAX_BPMN_BYTES} bytes"}],
        )
    return body


def with_total(response: Response, total: Total) -> Response:
    """A Part 1 list stays a JSON array; its total goes in X-Total-Count (contract
    Part 2, "Lists"), and above the exact range X-Total-Exact says so."""
    response.headers["X-Total-Count"] = str(total.shown)
    if not total.exact:
        response.headers["X-Total-Exact"] = "false"
    return response
