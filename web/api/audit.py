"""The administration events (admin): `GET /api/v1/audit/admin-events`."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from engine.services.audit import admin_events
from engine.services.errors import Invalid
from web.api import api_blueprint
from web.api.common import current_actor, services
from web.api.openapi import PAGING, operation
from web.api.schemas import BOOLEAN, ID, INTEGER, STRING, TIME, answer, array, enum

# Contract Part 2, "Lists".
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**9
EXACT_TOTAL_UP_TO = 10_000

ADMIN_EVENT = answer(
    {
        "id": ID,
        "sequence": {**INTEGER, "description": "its place in the admin chain, from 1"},
        "at": TIME,
        "actor": STRING,
        "type": enum(sorted(admin_events.ADMIN_EVENT_TYPES)),
        "data": {"type": "object", "description": "what changed, never a secret"},
    },
    description="A change to users, roles, tokens, SLA policies, calendars or processes.",
)
ADMIN_EVENT_PAGE = answer(
    {"items": array(ADMIN_EVENT), "total": INTEGER, "total_exact": BOOLEAN},
    optional=("total_exact",),
)


@api_blueprint.get("/audit/admin-events")
@operation(
    summary="Administration events, newest first",
    tags=["audit"],
    query=PAGING,
    responses={
        200: ADMIN_EVENT_PAGE,
        403: "only an administrator reads the administration events",
        422: "`limit` or `offset` is out of range",
    },
)
def list_admin_events() -> Response:
    """The admin chain of the audit trail, `limit` (1-200, default 50) at a time."""
    actor = current_actor()
    admin_events.require_auditor(actor)
    limit, offset = _paging(request.args.get("limit"), request.args.get("offset"))
    page = admin_events.admin_event_page(services(), actor, limit=limit, offset=offset)
    answer: dict[str, Any] = {"items": page.items, "total": min(page.total, EXACT_TOTAL_UP_TO)}
    if page.total > EXACT_TOTAL_UP_TO:
        answer["total_exact"] = False
    return jsonify(answer)


def _paging(raw_limit: str | None, raw_offset: str | None) -> tuple[int, int]:
    errors: dict[str, str] = {}
    limit = _whole(raw_limit, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT, errors)
    offset = _whole(raw_offset, "offset", 0, MAX_OFFSET, 0, errors)
    if errors:
        raise Invalid("invalid paging", errors)
    return limit, offset


def _whole(
    raw: str | None, name: str, low: int, high: int, default: int, errors: dict[str, str]
) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not low <= int(raw) <= high:
        errors[name] = f"must be a whole number from {low} to {high}"
        return default
    return int(raw)
