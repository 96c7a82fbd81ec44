"""Attachments for a caller known only by address, through a signed link's session
(engine.services.incidents.caller_links): they add files and download those the
caller may see, on that one incident, as everyone else does from the pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.domain.file_types import sniff_content_type
from engine.persistence.blobs import BlobMissing
from engine.persistence.models import Attachment
from engine.services.context import ServiceContext
from engine.services.errors import NotFound
from engine.services.incidents.attachments import attach_in, checked_upload
from engine.services.incidents.audience import attachment_condition
from engine.services.incidents.caller_links import CallerRef, LinkSession, the_caller
from engine.services.incidents.views import attachment_view


def add_link_attachment(
    ctx: ServiceContext, link: LinkSession, filename: str | None, data: bytes
) -> dict[str, Any]:
    """The caller's file (never internal, never for the vendor) on the link's incident."""
    name = checked_upload(ctx, filename, data)
    caller = CallerRef(link=link)
    with ctx.db.read() as session:
        the_caller(session, caller, link.incident_id, ctx.now())  # refused before storing
    sha256 = ctx.blobs.put(data)
    content_type = sniff_content_type(data)
    with ctx.db.write() as session:
        now = ctx.now()
        incident, author, _ = the_caller(session, caller, link.incident_id, now, for_update=True)
        row = attach_in(session, incident, None, name, sha256, len(data), content_type, author, now)
        return attachment_view(row)


def link_download(
    ctx: ServiceContext, link: LinkSession, attachment_id: int
) -> tuple[Attachment, bytes]:
    """An attachment of the link's incident the caller may see, and its bytes (404 for
    any other, internal and vendor files included)."""
    with ctx.db.read() as session:
        incident, _, audience = the_caller(
            session, CallerRef(link=link), link.incident_id, ctx.now()
        )
        query = select(Attachment).where(
            Attachment.id == attachment_id, Attachment.incident_id == incident.id
        )
        condition = attachment_condition(audience)
        if condition is not None:
            query = query.where(condition)
        row = session.scalar(query)
        if row is None:
            raise NotFound(f"attachment {attachment_id} not found")
        session.expunge(row)
    try:
        return row, ctx.blobs.read(row.sha256)
    except BlobMissing as error:
        raise NotFound(f"the file of attachment {attachment_id} is missing") from error
