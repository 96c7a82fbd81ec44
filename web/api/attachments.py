"""Attachments over the JSON API (contract Part 2, "Attachments").

Uploads are multipart (`file`, optional `internal=true`, `vendor=true`). The app's
own body limit (MAX_CONTENT_LENGTH, web/app.py) is below the attachment limit, and
the input guard and the CSRF check read the form before any view runs, so the limit
of an upload route is raised in a URL-value preprocessor (which Flask runs before
every before-request function) to ITSM_ATTACHMENT_MAX_BYTES plus the multipart
framing; a body announced larger is refused there with the contract's 413.
Downloads are served as attachments only: `Content-Disposition: attachment`,
`nosniff`, and a sandbox, with the type sniffed at upload.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from engine.domain.file_types import served_content_type
from engine.domain.paging import parse_page
from engine.persistence.models import Attachment
from engine.services.context import ServiceContext
from engine.services.errors import Invalid, TooLarge
from engine.services.incidents import attachments as use_cases
from web.api import api_blueprint
from web.api.common import current_actor, services
from web.api.openapi import PAGING, Content, Reply, operation
from web.api.schemas import BOOLEAN, COMPONENTS, ID, INTEGER, STRING, TIME, answer, array, ref
from web.security import DOWNLOAD_POLICY, content_disposition

TAGS = ["attachments"]
INCIDENT = {"incident_id": "the incident's numeric id"}
NOT_VISIBLE = "no such incident, or not one you may see"
# What multipart framing and the small fields add to the file itself.
MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_ENDPOINTS = frozenset({"api.upload_attachment"})
TRUE_TEXTS = ("true", "on", "1")
FALSE_TEXTS = ("", "false", "off", "0")

COMPONENTS["Attachment"] = answer(
    {
        "id": ID,
        "filename": STRING,
        "size": INTEGER,
        "content_type": {**STRING, "description": "sniffed from the bytes, not the client's"},
        "sha256": {**STRING, "pattern": "^[0-9a-f]{64}$"},
        "internal": BOOLEAN,
        "vendor": BOOLEAN,
        "uploaded_by": STRING,
        "uploaded_at": TIME,
    },
    description="A file on an incident; `vendor`: staff and the vendors only, never the caller.",
)
COMPONENTS["AttachmentPage"] = answer(
    {"items": array(ref("Attachment")), "total": INTEGER, "total_exact": BOOLEAN},
    optional=("total_exact",),
)
UPLOAD = Content(
    "multipart/form-data",
    answer(
        {
            "file": {**STRING, "contentMediaType": "application/octet-stream"},
            "internal": {"type": "string", "enum": ["true", "false"]},
            "vendor": {"type": "string", "enum": ["true", "false"]},
        },
        optional=("internal", "vendor"),
    ),
    "the file in the field `file` (its name is kept without any path); `internal=true` "
    "(staff only) hides it from the caller and vendors, `vendor=true` from the caller",
)
DOWNLOAD = Content(
    "*/*",
    {"type": "string", "contentMediaType": "application/octet-stream"},
    "the file's bytes, with the type sniffed at upload",
    headers={
        "Content-Disposition": {**STRING, "description": "attachment; filename=…"},
        "X-Content-Type-Options": {**STRING, "const": "nosniff"},
    },
)


def upload_limit(ctx: ServiceContext) -> int:
    return ctx.channels.attachment_max_bytes + MULTIPART_OVERHEAD


def refuse_oversize_body(ctx: ServiceContext) -> None:
    """Raise the body limit of this request to the attachment limit, and refuse at once
    a body announced larger than any file within it (nothing is read or stored)."""
    request.max_content_length = upload_limit(ctx)
    if (request.content_length or 0) > upload_limit(ctx):
        raise TooLarge(
            "the file is too large",
            {"file": f"must be at most {ctx.channels.attachment_max_bytes} bytes"},
        )


@api_blueprint.url_value_preprocessor
def _upload_body_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if endpoint in UPLOAD_ENDPOINTS:
        refuse_oversize_body(services())


def form_flag(name: str) -> bool:
    raw = request.form.get(name, "").strip().lower()
    if raw in TRUE_TEXTS:
        return True
    if raw in FALSE_TEXTS:
        return False
    raise Invalid("invalid attachment", {name: "must be true or false"})


def uploaded_file() -> tuple[str | None, bytes]:
    """The name and bytes of the form's `file` (nothing sent: no name, no bytes)."""
    storage = request.files.get("file")
    if storage is None:
        return None, b""
    return storage.filename, storage.read()


def file_response(row: Attachment, data: bytes) -> Response:
    """An attachment as a file to save, never to render: the browser is told not to
    guess the type, and a sandbox with no sources disarms an HTML or SVG file opened
    anyway."""
    response: Response = current_app.response_class(data)
    response.headers["Content-Type"] = served_content_type(row.content_type, data)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


@api_blueprint.post("/incidents/<int:incident_id>/attachments")
@operation(
    summary="Attach a file to an incident",
    tags=TAGS,
    path=INCIDENT,
    request=UPLOAD,
    responses={
        201: Reply("The attachment", ref("Attachment")),
        403: "you may not add notes here, or only staff attach internal files",
        404: NOT_VISIBLE,
        413: "the file is larger than ITSM_ATTACHMENT_MAX_BYTES; nothing is stored",
        422: "no file, an empty file or one without a name (`details` names `file`)",
    },
)
def upload_attachment(incident_id: int) -> tuple[Response, int]:
    """Anyone who may add a note to the incident; the content type is sniffed from the
    bytes. A vendor's file is always `vendor: true`."""
    actor = current_actor()
    internal, vendor = form_flag("internal"), form_flag("vendor")
    filename, data = uploaded_file()
    created = use_cases.add_attachment(
        services(), actor, incident_id, filename, data, internal=internal, vendor=vendor
    )
    return jsonify(created), 201


@api_blueprint.get("/incidents/<int:incident_id>/attachments")
@operation(
    summary="The incident's attachments you may see, oldest first",
    tags=TAGS,
    path=INCIDENT,
    query=PAGING,
    responses={200: ref("AttachmentPage"), 404: NOT_VISIBLE, 422: "limit or offset is invalid"},
)
def list_attachments(incident_id: int) -> Response:
    actor = current_actor()
    page, errors = parse_page(request.args)
    if errors:
        raise Invalid("invalid paging", errors)
    return jsonify(use_cases.list_attachments(services(), actor, incident_id, page))


@api_blueprint.get("/attachments/<int:attachment_id>")
@operation(
    summary="Download an attachment",
    tags=TAGS,
    path={"attachment_id": "the attachment's numeric id"},
    responses={
        200: Reply("The file, as an attachment", DOWNLOAD),
        404: "no such attachment, or not one you may see",
    },
)
def download_attachment(attachment_id: int) -> Response:
    row, data = use_cases.download(services(), current_actor(), attachment_id)
    return file_response(row, data)
