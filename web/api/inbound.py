"""Mail in: `POST /api/v1/inbound/email` (integration users: a mail gateway)."""

from __future__ import annotations

from flask import Response, jsonify, request

from engine.services.errors import Invalid
from engine.services.intake import inbound as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, services
from web.api.openapi import Content, operation
from web.api.schemas import INTEGER, STRING, answer, enum

TAGS = ["intake"]
RFC822 = "message/rfc822"
MAX_MIB = use_cases.MAX_MESSAGE_BYTES // (1024 * 1024)
RAW_MESSAGE = Content(
    RFC822,
    {"type": "string", "format": "binary", "description": "a raw RFC 822 message"},
    f"the message exactly as received, at most {MAX_MIB} MiB (larger → 413)",
    extensions={"x-max-bytes": use_cases.MAX_MESSAGE_BYTES},
)
OUTCOME = answer(
    {
        "action": enum(["created", "noted", "ignored"]),
        "incident_id": {**INTEGER, "description": "the incident created or noted"},
        "reason": {**STRING, "description": "why it was ignored"},
    },
    optional=("incident_id", "reason"),
)


@api_blueprint.post("/inbound/email")
@operation(
    summary="Deliver a received mail: it becomes an incident, a note or is ignored",
    tags=TAGS,
    request=RAW_MESSAGE,
    responses={
        200: OUTCOME,
        403: "only integration users deliver mail",
        413: f"the message is larger than {MAX_MIB} MiB",
        415: "the body is not message/rfc822",
    },
)
def receive_email() -> Response | tuple[Response, int]:
    """A new mail becomes an incident (channel `email`, the sender its caller); a
    reply by the caller (`[INC-000123]` in the subject, or answering one of our
    mails) a note by the caller; auto-replies, loops, floods, duplicates and mail
    failing DMARC are ignored with a reason."""
    actor = current_actor()
    use_cases.require_integration(actor)
    # Raised above the app-wide body limit for this view only (Flask >= 3.1).
    request.max_content_length = use_cases.MAX_MESSAGE_BYTES + 1
    if request.mimetype != RFC822:
        return jsonify(
            {
                "error": f"the body must be {RFC822}",
                "details": {"Content-Type": f"must be {RFC822}, not {request.mimetype!r}"},
            }
        ), 415
    if (request.content_length or 0) > use_cases.MAX_MESSAGE_BYTES:
        return _too_large()
    raw = request.stream.read(use_cases.MAX_MESSAGE_BYTES + 1)
    if len(raw) > use_cases.MAX_MESSAGE_BYTES:
        return _too_large()
    if not raw:
        raise Invalid("the message is empty", {"body": "must be a raw RFC 822 message"})
    outcome = use_cases.receive_from_api(services(), actor, raw)
    return jsonify(outcome.as_json())


def _too_large() -> tuple[Response, int]:
    return jsonify(
        {
            "error": f"the message is larger than {MAX_MIB} MiB",
            "details": {"body": f"at most {use_cases.MAX_MESSAGE_BYTES} bytes"},
        }
    ), 413
