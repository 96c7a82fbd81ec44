"""Webhooks for programs (admin): register, list, delete, and each one's delivery log."""

from __future__ import annotations

from flask import Response, jsonify, request

from engine.domain.webhook_hosts import URL_LIMIT
from engine.services.notify import webhooks as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services
from web.api.openapi import PAGING, Reply, operation
from web.api.schemas import INTEGER, STRING, TIME, answer, array, body, enum, nullable

TAGS = ["webhooks"]
ADMIN_ONLY = use_cases.ADMIN_ONLY
EVENT_TYPE = enum(sorted(use_cases.INCIDENT_EVENT_TYPES))
WEBHOOK = answer(
    {
        "id": INTEGER,
        "url": STRING,
        "events": array(EVENT_TYPE),
        "created_at": TIME,
        "created_by": STRING,
        "deleted_at": {**nullable(TIME), "description": "set once deleted: nothing more is sent"},
    }
)
NEW_WEBHOOK = body(
    {
        "url": {
            **STRING,
            "maxLength": URL_LIMIT,
            "description": "http(s), no credentials; its host must be listed in "
            "ITSM_WEBHOOK_ALLOWED_HOSTS or resolve to public addresses only",
        },
        "events": array(EVENT_TYPE, minItems=1),
        "secret": {
            **STRING,
            "minLength": use_cases.SECRET_MIN,
            "maxLength": use_cases.SECRET_MAX,
            "description": "signs each body (X-ITSM-Signature: sha256=<hex HMAC-SHA256>); "
            "never returned",
        },
    },
    required=("url", "events", "secret"),
    closed=True,
)
DELIVERY = answer(
    {
        "id": INTEGER,
        "event_id": nullable(INTEGER),
        "event_type": STRING,
        "status": enum([use_cases.QUEUED, use_cases.DELIVERED, use_cases.FAILED]),
        "attempts": INTEGER,
        "response_status": nullable(INTEGER),
        "last_error": nullable(STRING),
        "created_at": TIME,
        "next_attempt_at": nullable(TIME),
        "delivered_at": nullable(TIME),
    }
)


def _listing(item: dict[str, object]) -> dict[str, object]:
    return answer({"items": array(item), "total": INTEGER}, optional=("total_exact",))


@api_blueprint.post("/webhooks")
@operation(
    summary="Register a webhook: each event of the chosen types is POSTed to the URL",
    tags=TAGS,
    request=NEW_WEBHOOK,
    responses={
        201: Reply("The webhook (never its secret)", WEBHOOK),
        403: ADMIN_ONLY,
        422: "invalid fields (`details` names each: url, events, secret)",
    },
)
def create_webhook() -> tuple[Response, int]:
    return jsonify(use_cases.create_webhook(services(), current_actor(), json_body())), 201


@api_blueprint.get("/webhooks")
@operation(
    summary="Webhooks, newest first (deleted ones say so)",
    tags=TAGS,
    query=PAGING,
    responses={200: _listing(WEBHOOK), 403: ADMIN_ONLY, 422: "a query parameter is invalid"},
)
def list_webhooks() -> Response:
    return jsonify(use_cases.list_webhooks(services(), current_actor(), request.args.to_dict()))


@api_blueprint.delete("/webhooks/<int:webhook_id>")
@operation(
    summary="Delete a webhook: nothing more is sent to it; its delivery log stays",
    tags=TAGS,
    path={"webhook_id": "the webhook's id"},
    responses={200: WEBHOOK, 403: ADMIN_ONLY, 404: "no such webhook"},
)
def delete_webhook(webhook_id: int) -> Response:
    return jsonify(use_cases.delete_webhook(services(), current_actor(), webhook_id))


@api_blueprint.get("/webhooks/<int:webhook_id>/deliveries")
@operation(
    summary="A webhook's deliveries, newest first: status, attempts, the last answer",
    tags=TAGS,
    path={"webhook_id": "the webhook's id"},
    query=PAGING,
    responses={
        200: _listing(DELIVERY),
        403: ADMIN_ONLY,
        404: "no such webhook",
        422: "a query parameter is invalid",
    },
)
def list_deliveries(webhook_id: int) -> Response:
    return jsonify(
        use_cases.list_deliveries(
            services(), current_actor(), webhook_id, request.args.to_dict()
        )
    )
