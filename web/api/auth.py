"""Bearer tokens and password changes; both are rate limited like the sign-in form."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from engine.services.errors import Invalid, Unauthorized
from engine.services.people.users import (
    WrongPassword,
    change_password,
    issue_token_for_account,
)
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services
from web.api.openapi import operation
from web.api.schemas import ref
from web.signin_limits import Refused, client_address, current_limits

TOO_MANY = "too many sign-in attempts; retry later"


def too_many(refused: Refused) -> tuple[Response, int, dict[str, str]]:
    body = {"error": TOO_MANY, "details": {"retry_after": refused.retry_after}}
    return jsonify(body), 429, {"Retry-After": str(refused.retry_after)}


def _strings(body: Any, *names: str) -> dict[str, str]:
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", {})
    errors = {
        name: "is required"
        for name in names
        if not isinstance(body.get(name), str) or not body[name]
    }
    if errors:
        raise Invalid("invalid credentials", errors)
    return {name: str(body[name]) for name in names}


@api_blueprint.post("/auth/token")
@operation(
    summary="Sign in: a bearer token",
    tags=["auth"],
    public=True,
    request=ref("Credentials"),
    responses={
        200: ref("Token"),
        401: "wrong username or password",
        422: "username or password missing",
        429: "too many sign-in attempts: `details.retry_after` seconds",
    },
)
def create_token() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    given = _strings(json_body(), "username", "password")
    username, address = given["username"], client_address()
    limits = current_limits()
    refused = limits.attempt(username, address)
    if refused:
        return too_many(refused)
    try:
        issued, account = issue_token_for_account(services(), username, given["password"])
    except Unauthorized:
        limits.failed(username, address)
        raise
    limits.succeeded(username, address)
    body = {
        "token": issued.token,
        "expires_at": issued.expires_at.isoformat(),
        "must_change_password": account.must_change_password,
    }
    return jsonify(body), 200


@api_blueprint.post("/auth/password")
@operation(
    summary="Change your own password: a new token, every other revoked",
    tags=["auth"],
    for_reset_accounts=True,
    request=ref("PasswordChange"),
    responses={
        200: ref("Token"),
        401: "no valid token, or the user was deactivated",
        409: "the password was changed meanwhile; sign in again",
        422: "wrong current password, or a new one the password policy refuses",
        429: "too many attempts: `details.retry_after` seconds",
    },
)
def change_own_password() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    """`{current_password, new_password}`: every token of the user is revoked and a new
    one returned. The one endpoint a user whose password was reset may call."""
    me = current_actor(password_change=True)
    given = _strings(json_body(), "current_password", "new_password")
    limits, address = current_limits(), client_address()
    refused = limits.attempt(me.username, address)
    if refused:
        return too_many(refused)
    try:
        changed = change_password(
            services(), me, given["current_password"], given["new_password"], new_token=True
        )
    except WrongPassword:
        limits.failed(me.username, address)
        raise
    except Invalid:
        limits.succeeded(me.username, address)  # the current password was right
        raise
    limits.succeeded(me.username, address)
    issued = changed.token
    assert issued is not None
    return jsonify({"token": issued.token, "expires_at": issued.expires_at.isoformat()}), 200
