"""A received mail becomes an incident, a note by the caller, or an ignored entry
(contract Part 2, "Intake: e-mail in").

Each message is decided in a read transaction, its raw bytes and attachments are
stored in the blob store (slow work, outside any write), then one short write
keeps it: the incident or the note with the `inbound_mails` row and the
attachments, or the row alone for an ignored message.  Nothing of the mail is
trusted: an unusable From, a program's auto-reply, a loop of our own mail, a
flood, a message seen before or one our receiving server says failed DMARC is
ignored with a reason (the row and `itsm_inbound_mails_ignored{reason}`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.domain.file_types import sniff_content_type
from engine.domain.inbound_mail import INCIDENT_TAG, ParsedMail, parse_mail
from engine.domain.roles import INTEGRATION
from engine.persistence.models import InboundMail, Incident, Notification, User
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid, NotFound
from engine.services.incidents.attachments import attach_in
from engine.services.incidents.callers import caller_author
from engine.services.incidents.commands import create_incident
from engine.services.incidents.notes import NOTE_LIMIT, add_caller_note
from engine.services.intake.counting import count_mail
from engine.services.intake.mailbox_actor import mailbox_actor
from engine.services.people.profiles import email_problem, user_by_email

log = logging.getLogger("itsm.intake")

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
SENDER_LIMIT_PER_HOUR = 20
TITLE_LIMIT = 300
DESCRIPTION_LIMIT = 20_000
NO_SUBJECT = "(no subject)"
NO_TEXT = "(no text)"
SOURCES = ("api", "imap")


@dataclass(frozen=True)
class Outcome:
    action: str  # created, noted, ignored
    incident_id: int | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"action": self.action}
        if self.incident_id is not None:
            answer["incident_id"] = self.incident_id
        if self.reason is not None:
            answer["reason"] = self.reason
        return answer


@dataclass(frozen=True)
class _Kept:
    """An attachment stored in the blob store, to be attached in the write."""

    filename: str
    sha256: str
    size: int
    content_type: str


@dataclass(frozen=True)
class _Decision:
    action: str
    reason: str | None = None
    incident_id: int | None = None  # noted: the incident
    earlier_number: str | None = None  # created: the incident the mail was about
    caller_username: str | None = None  # created: the active user with the address


class _SeenMeanwhile(Exception):
    """The same Message-ID was kept by another transaction since the decision."""


def require_integration(actor: Actor) -> None:
    if INTEGRATION not in actor.roles:
        raise Forbidden("only integration users deliver mail")


def receive_from_api(ctx: ServiceContext, actor: Actor, raw: bytes) -> Outcome:
    """`POST /api/v1/inbound/email`: integration users only."""
    require_integration(actor)
    return receive(ctx, raw, "api", actor=actor)


def receive(
    ctx: ServiceContext, raw: bytes, source: str, *, actor: Actor | None = None
) -> Outcome:
    """Turn one raw RFC 822 message into an incident, a note or an ignored entry.
    `actor`: who carried it (the integration user; default the `mail-in` user)."""
    if source not in SOURCES:
        raise ValueError(f"unknown mail source {source!r}")
    if len(raw) > MAX_MESSAGE_BYTES:
        return record_ignored(ctx, source, "too_large", size=len(raw))
    mail = parse_mail(raw)
    carrier = actor or mailbox_actor(ctx)
    now = ctx.now()
    with ctx.db.read() as session:
        decision = _decide(ctx, session, mail, now)
    digest = ctx.blobs.put(raw)
    if decision.action == "ignored":
        return _keep_ignored(ctx, mail, len(raw), digest, source, decision.reason or "")
    kept, left_out = _store_attachments(ctx, mail)
    try:
        if decision.action == "noted" and decision.incident_id is not None:
            try:
                return _note(ctx, carrier, mail, len(raw), digest, source, kept, decision)
            except (Invalid, NotFound):  # the caller changed or the incident went meanwhile
                with ctx.db.read() as session:
                    owner = user_by_email(session, mail.from_address or "")
                    username = owner.username if owner is not None and owner.active else None
                decision = _Decision("created", caller_username=username)
        return _create(ctx, carrier, mail, len(raw), digest, source, kept, left_out, decision)
    except _SeenMeanwhile:
        return _keep_ignored(ctx, mail, len(raw), digest, source, "duplicate")


def record_ignored(
    ctx: ServiceContext, source: str, reason: str, *, size: int, raw: bytes | None = None
) -> Outcome:
    """Keep a message that could not be taken at all (too large, unreadable): its row,
    and its raw bytes when given (an unreadable one, for whoever looks into it)."""
    digest = ctx.blobs.put(raw) if raw is not None else None
    mail = parse_mail(raw) if raw is not None and reason != "unreadable" else None
    with ctx.db.write() as session:
        _row(session, mail, size, digest, source, "ignored", reason, None, ctx.now())
    return Outcome("ignored", reason=reason)


# -- the rules -----------------------------------------------------------------


def _decide(ctx: ServiceContext, session: Session, mail: ParsedMail, now: datetime) -> _Decision:
    settings = ctx.channels
    sender = mail.from_address
    if sender is None:
        return _Decision("ignored", "no_from")
    if sender == settings.mail_from.strip().lower() or _ours(session, mail.message_id):
        return _Decision("ignored", "loop")
    known_user = user_by_email(session, sender)
    caller_username = known_user.username if known_user and known_user.active else None
    if caller_username is None and email_problem(sender) is not None:
        return _Decision("ignored", "bad_sender")
    if mail.is_automatic:
        return _Decision("ignored", "auto_submitted")
    if mail.is_bulk:
        return _Decision("ignored", "precedence")
    if mail.message_id is not None and _seen(session, mail.message_id):
        return _Decision("ignored", "duplicate")
    if mail.dmarc_failed(settings.inbound_authserv_id):
        return _Decision("ignored", "dmarc_failed")
    if settings.inbound_domains and known_user is None and not _may_write_in(
        session, sender, settings.inbound_domains
    ):
        return _Decision("ignored", "unknown_sender")
    recent = session.scalar(
        select(func.count(InboundMail.id)).where(
            InboundMail.from_address == sender,
            InboundMail.received_at > now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= SENDER_LIMIT_PER_HOUR:
        return _Decision("ignored", "flood")
    incident = _incident_about(session, mail)
    if incident is None:
        return _Decision("created", caller_username=caller_username)
    if incident.status != "closed" and caller_author(incident, sender) is not None:
        return _Decision("noted", incident_id=incident.id)
    return _Decision(
        "created", caller_username=caller_username, earlier_number=incident.number
    )


def _ours(session: Session, message_id: str | None) -> bool:
    """A mail we sent ourselves, come back (a forwarding rule, a mailing list)."""
    if message_id is None:
        return False
    found = session.scalar(
        select(Notification.id).where(Notification.message_id == message_id).limit(1)
    )
    return found is not None


def _seen(session: Session, message_id: str) -> bool:
    found = session.scalar(
        select(InboundMail.id).where(InboundMail.message_id == message_id).limit(1)
    )
    return found is not None


def _may_write_in(session: Session, sender: str, domains: tuple[str, ...]) -> bool:
    """True when the sender may write in: a domain of ours (or a subdomain), or an
    address some incident already has as its caller."""
    domain = sender.rsplit("@", 1)[1]
    if any(domain == d or domain.endswith("." + d) for d in domains):
        return True
    caller = session.scalar(
        select(Incident.id).where(func.lower(Incident.caller_email) == sender).limit(1)
    )
    return caller is not None


def _incident_about(session: Session, mail: ParsedMail) -> Incident | None:
    """The incident the mail is about: `[INC-000123]` in the subject, else a mail of
    ours it answers (In-Reply-To / References naming a notification)."""
    number = mail.incident_number
    if number is not None:
        # "[INC-123]" typed by hand names INC-000123.
        padded = f"INC-{int(number.split('-', 1)[1]):06d}"
        incident = session.scalar(
            select(Incident).where(Incident.number.in_({number, padded})).limit(1)
        )
        if incident is not None:
            return incident
    ids = list(mail.thread_ids)
    if not ids:
        return None
    bare = [value.strip("<>") for value in ids]
    incident_id = session.scalar(
        select(Notification.incident_id)
        .where(or_(Notification.message_id.in_(ids), Notification.message_id.in_(bare)))
        .order_by(Notification.id.desc())
        .limit(1)
    )
    return session.get(Incident, incident_id) if incident_id is not None else None


# -- keeping it ---------------------------------------------------------------------


def _store_attachments(ctx: ServiceContext, mail: ParsedMail) -> tuple[list[_Kept], list[str]]:
    """Put each attachment within the size limit in the blob store; name the rest."""
    kept: list[_Kept] = []
    left_out: list[str] = []
    limit = ctx.channels.attachment_max_bytes
    for attachment in mail.attachments:
        if len(attachment.data) > limit:
            left_out.append(attachment.filename)
            continue
        digest = ctx.blobs.put(attachment.data)
        content_type = sniff_content_type(attachment.data)
        kept.append(_Kept(attachment.filename, digest, len(attachment.data), content_type))
    return kept, left_out


def _row(
    session: Session,
    mail: ParsedMail | None,
    size: int,
    digest: str | None,
    source: str,
    action: str,
    reason: str | None,
    incident_id: int | None,
    now: datetime,
) -> InboundMail:
    row = InboundMail(
        message_id=mail.message_id if mail else None,
        from_address=mail.from_address if mail else None,
        subject=(mail.subject if mail else "")[:400],
        received_at=now,
        size=size,
        sha256=digest,
        source=source,
        action=action,
        reason=reason,
        incident_id=incident_id,
    )
    session.add(row)
    session.flush()
    count_mail(session, action, reason)
    return row


def _keep_ignored(
    ctx: ServiceContext, mail: ParsedMail, size: int, digest: str, source: str, reason: str
) -> Outcome:
    with ctx.db.write() as session:
        _row(session, mail, size, digest, source, "ignored", reason, None, ctx.now())
    log.info("inbound mail from %s ignored: %s", mail.from_address, reason)
    return Outcome("ignored", reason=reason)


def _keeper(
    carrier: Actor,
    mail: ParsedMail,
    size: int,
    digest: str,
    source: str,
    action: str,
    kept: list[_Kept],
) -> Any:
    """The `also` hook: the mail's row and its attachments in the incident's write."""

    def keep(session: Session, incident: Incident, now: datetime) -> None:
        if mail.message_id is not None:
            # Two pollers (or a retrying gateway) with the same message: the carrier's
            # row is locked so that the second one sees the first one's row.
            session.get(User, carrier.id, with_for_update={"of": User})
            if _seen(session, mail.message_id):
                raise _SeenMeanwhile(mail.message_id)
        row = _row(session, mail, size, digest, source, action, None, incident.id, now)
        uploader = caller_author(incident, mail.from_address or "") or mail.from_address
        for item in kept:
            attach_in(
                session,
                incident,
                None,
                item.filename,
                item.sha256,
                item.size,
                item.content_type,
                uploader or "",
                now,
                inbound_mail_id=row.id,
            )

    return keep


def _note(
    ctx: ServiceContext,
    carrier: Actor,
    mail: ParsedMail,
    size: int,
    digest: str,
    source: str,
    kept: list[_Kept],
    decision: _Decision,
) -> Outcome:
    assert decision.incident_id is not None and mail.from_address is not None
    text = _limited(mail.reply_text, NOTE_LIMIT) or NO_TEXT
    add_caller_note(
        ctx,
        decision.incident_id,
        mail.from_address,
        text,
        via=carrier.username,
        also=_keeper(carrier, mail, size, digest, source, "noted", kept),
    )
    return Outcome("noted", incident_id=decision.incident_id)


def _create(
    ctx: ServiceContext,
    carrier: Actor,
    mail: ParsedMail,
    size: int,
    digest: str,
    source: str,
    kept: list[_Kept],
    left_out: list[str],
    decision: _Decision,
) -> Outcome:
    assert mail.from_address is not None
    title = mail.subject
    parts = [mail.text]
    if decision.earlier_number is not None:
        # Replies to this incident's mails must not be taken for the earlier one's.
        title = INCIDENT_TAG.sub(lambda match: match.group(1).upper(), title)
        parts.insert(0, f"Re: {decision.earlier_number}")
    if left_out:
        limit = ctx.channels.attachment_max_bytes
        parts.append(f"(attachments over {limit} bytes left out: {', '.join(left_out)})")
    payload = {
        "title": _limited(" ".join(title.split()), TITLE_LIMIT) or NO_SUBJECT,
        "description": _limited("\n\n".join(p for p in parts if p), DESCRIPTION_LIMIT),
        "channel": "email",
    }
    if decision.caller_username is not None:
        payload["caller"] = decision.caller_username
    else:
        payload["caller_email"] = mail.from_address
    detail = create_incident(
        ctx, carrier, payload, also=_keeper(carrier, mail, size, digest, source, "created", kept)
    )
    return Outcome("created", incident_id=int(detail["id"]))


def _limited(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
