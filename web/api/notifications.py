"""An incident's mails (staff): `GET /api/v1/incidents/ID/notifications`."""

from __future__ import annotations

from flask import Response, jsonify, request

from engine.domain.paging import parse_page
from engine.services.errors import Invalid
from engine.services.notify import mail_log
from web.api import api_blueprint
from web.api.common import current_actor, services
from web.api.openapi import PAGING, TOTAL_HEADER, Reply, operation
from web.api.schemas import INTEGER, STRING, TIME, answer, array, enum, nullable

NOTIFICATION = answer(
    {
        "at": nullable(TIME),
        "to": {**STRING, "description": "the recipient's address"},
        "subject": STRING,
        "event": {
            **STRING,
            "description": "the event type that caused the mail, or `task_ready`",
        },
        "status": enum(["queued", "sent", "failed"]),
        "attempts": INTEGER,
    },
    description="A mail of the incident: queued, sent (at: when) or failed after its tries.",
)


@api_blueprint.get("/incidents/<int:incident_id>/notifications")
@operation(
    summary="The incident's mails, oldest first, a page at a time",
    tags=["incidents"],
    path={"incident_id": "the incident's numeric id"},
    query=PAGING,
    responses={
        200: Reply(
            "One page; the total is in X-Total-Count", array(NOTIFICATION), headers=TOTAL_HEADER
        ),
        403: "only staff see an incident's notifications",
        404: "no such incident",
        422: "`limit` or `offset` is out of range",
    },
)
def list_notifications(incident_id: int) -> Response:
    """Every mail queued for the incident (contract Part 2, "Notifications: e-mail
    out"): `at` is when it was sent, else when it was queued."""
    actor = current_actor()
    page, errors = parse_page(request.args)
    if errors:
        raise Invalid("invalid paging", errors)
    listed = mail_log.incident_notifications(services(), actor, incident_id, page)
    response = jsonify(listed.items)
    response.headers["X-Total-Count"] = str(listed.total)
    if not listed.exact:
        response.headers["X-Total-Exact"] = "false"
    return response
