"""Files on an incident (contract Part 2, "Attachments").

The bytes live in the blob store under their SHA-256 (ctx.blobs), written before
the short write transaction that adds the row, its `attachment_added` event and
the administration event `attachment_uploaded`; a file whose transaction then
fails stays in the store unreferenced (the same bytes are stored once anyway).

Who uploads: anyone who may add a note - staff, the incident's caller, an
integration user (a program that reads incidents as their caller does), and a
vendor on an incident they see, whose attachments are always `vendor: true`.
Only staff mark one `internal`. Who sees one: `audience.attachment_condition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.file_types import safe_filename, sniff_content_type
from engine.domain.paging import Page
from engine.persistence.blobs import BlobMissing
from engine.persistence.models import Attachment, Incident
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid, NotFound, TooLarge
from engine.services.incidents.audience import (
    Audience,
    attachment_condition,
    audience_of,
    names_for,
    shown_attachment,
)
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.views import attachment_view
from engine.services.incidents.visibility import load_visible
from engine.services.paging import counted, paged

ATTACHMENT_ADDED = "attachment_added"


@dataclass(frozen=True)
class Upload:
    """What the actor may attach, decided from who they are to the incident."""

    internal: bool
    vendor: bool


def add_attachment(
    ctx: ServiceContext,
    actor: Actor,
    incident_id: int,
    filename: str | None,
    data: bytes,
    *,
    internal: bool = False,
    vendor: bool = False,
) -> dict[str, Any]:
    """Attach a file; the answer is the attachment's JSON (contract). Over the size
    limit: TooLarge (413) and nothing stored; empty or nameless: 422 naming `file`."""
    name = checked_upload(ctx, filename, data)
    with ctx.db.read() as session:
        # Refused before anything is stored: an unknown incident or a role that may not.
        incident = load_visible(session, actor, incident_id)
        _allowed(actor, incident, internal=internal, vendor=vendor)
    # Slow work outside the transaction: hashing, writing the file, sniffing.
    sha256 = ctx.blobs.put(data)
    content_type = sniff_content_type(data)
    with ctx.db.write() as session:
        incident = load_visible(session, actor, incident_id, for_update=True)
        upload = _allowed(actor, incident, internal=internal, vendor=vendor)
        row = attach_in(
            session,
            incident,
            None,
            name,
            sha256,
            len(data),
            content_type,
            actor.username,
            ctx.now(),
            internal=upload.internal,
            vendor=upload.vendor,
        )
        return attachment_view(row)


def attach_in(
    session: Session,
    incident: Incident,
    log: EventLog | None,
    filename: str,
    sha256: str,
    size: int,
    content_type: str,
    uploaded_by: str,
    at: datetime,
    *,
    internal: bool = False,
    vendor: bool = False,
    inbound_mail_id: int | None = None,
) -> Attachment:
    """Add an attachment row and its events inside the caller's write transaction
    (inbound mail keeps a mail's attachments this way). The bytes must already be in
    the blob store under `sha256` (ctx.blobs.put, before the transaction), and
    `content_type` sniffed from them (engine.domain.file_types.sniff_content_type).
    The file name is cleaned here (last path component, no control characters);
    a name with nothing left becomes "attachment"."""
    row = Attachment(
        incident_id=incident.id,
        filename=safe_filename(filename) or "attachment",
        size=size,
        content_type=content_type,
        sha256=sha256,
        internal=internal,
        vendor=vendor,
        uploaded_by=uploaded_by,
        uploaded_at=at,
        inbound_mail_id=inbound_mail_id,
    )
    session.add(row)
    session.flush()
    log = log or EventLog(session, incident)
    extra: dict[str, Any] = {"vendor": True} if vendor else {}
    log.add(
        ATTACHMENT_ADDED,
        uploaded_by,
        at,
        attachment_id=row.id,
        filename=row.filename,
        internal=internal,
        **extra,
    )
    # The issue: attachments write administration audit events too.
    admin_events.record(
        session,
        uploaded_by,
        admin_events.ATTACHMENT_UPLOADED,
        at,
        incident_id=incident.id,
        attachment_id=row.id,
        sha256=sha256,
    )
    incident.updated_at = at
    return row


def list_attachments(
    ctx: ServiceContext, actor: Actor, incident_id: int, page: Page
) -> dict[str, Any]:
    """`{items, total}` (contract "Lists"): the attachments the actor may see, oldest first."""
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        audience = audience_of(actor, incident)
        query = select(Attachment).where(Attachment.incident_id == incident.id)
        condition = attachment_condition(audience)
        if condition is not None:
            query = query.where(condition)
        total = counted(session, query)
        rows = session.scalars(paged(query.order_by(Attachment.id), page)).all()
        items = shown_attachments(session, audience, [attachment_view(r) for r in rows])
    return {"items": items, **total.fields()}


def shown_attachments(
    session: Session, audience: Audience, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    names = names_for(session, audience, attachments=items)
    return [shown_attachment(item, names) for item in items]


def download(ctx: ServiceContext, actor: Actor, attachment_id: int) -> tuple[Attachment, bytes]:
    """The attachment and its bytes; 404 for one the actor may not see (a reporter asking
    for an internal attachment learns nothing, not even that it exists)."""
    with ctx.db.read() as session:
        row = _visible_attachment(session, actor, attachment_id)
        session.expunge(row)
    try:
        data = ctx.blobs.read(row.sha256)
    except BlobMissing as error:
        raise NotFound(
            f"the file of attachment {attachment_id} is missing from the attachment folder"
        ) from error
    return row, data


def _visible_attachment(session: Session, actor: Actor, attachment_id: int) -> Attachment:
    missing = NotFound(f"attachment {attachment_id} not found")
    row = session.get(Attachment, attachment_id)
    if row is None:
        raise missing
    try:
        incident = load_visible(session, actor, row.incident_id)
    except NotFound:
        raise missing from None
    condition = attachment_condition(audience_of(actor, incident))
    if condition is not None:
        seen = session.scalar(
            select(Attachment.id).where(Attachment.id == attachment_id, condition)
        )
        if seen is None:
            raise missing
    return row


def checked_upload(ctx: ServiceContext, filename: str | None, data: bytes) -> str:
    limit = ctx.channels.attachment_max_bytes
    if len(data) > limit:
        raise TooLarge("the file is too large", {"file": f"must be at most {limit} bytes"})
    name = safe_filename(filename)
    errors = {}
    if not name:
        errors["file"] = "needs a file name"
    elif not data:
        errors["file"] = "is empty"
    if errors:
        raise Invalid("invalid attachment", errors)
    return name


def _allowed(actor: Actor, incident: Incident, *, internal: bool, vendor: bool) -> Upload:
    """What this actor's upload becomes, or Forbidden (load_visible already checked
    that they see the incident)."""
    audience = audience_of(actor, incident)
    if audience.staff:
        return Upload(internal=internal, vendor=vendor)
    if internal:
        raise Forbidden("only staff attach internal files")
    if audience.kind == "vendor":
        # A vendor's file stays with the desk and the vendors, never the caller.
        return Upload(internal=False, vendor=True)
    if vendor:
        raise Forbidden("only staff and vendors attach files for the vendor")
    return Upload(internal=False, vendor=False)
