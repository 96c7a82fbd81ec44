"""The mail loop's pass: claim the due mails of the outbox, send them over SMTP
outside any transaction, record what happened.

Claiming is the SLA worker's way (engine.services.incidents.timers): a short write
transaction takes due rows (on PostgreSQL FOR UPDATE SKIP LOCKED, so two workers
take different rows; on SQLite writers queue and the claim is re-checked inside
the lock) and marks them `claimed_by` this worker until `claimed_until`.  A worker
that dies leaves its rows claimed only until then; another worker then takes them.

A mail is marked `sent` right after the SMTP server accepted it (in the pass's next
outcome write, at most FLUSH_EVERY seconds later), and a sent mail is never taken
again.  A failure (server down, slow past the timeouts, recipient
refused) counts an attempt and waits (BACKOFF); after MAX_ATTEMPTS the mail is
`failed` and the incident gets a `notification_failed` event (actor `system`).
"""

from __future__ import annotations

import dataclasses
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime
from typing import Any

from sqlalchemy import or_, select

from engine.persistence.models import Incident, Notification, ProcessDefinition
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.incidents.caller_links import signed_url
from engine.services.incidents.event_log import EventLog
from engine.services.notify.mail_text import render, subject_of
from engine.services.notify.outbox import SIGNED_LINK  # the module registers the producer
from engine.services.notify.smtp import TOTAL_TIMEOUT, SmtpConnection, SmtpUrlError, parse_smtp_url
from engine.workflow.translations import DiagramTexts, diagram_texts

log = logging.getLogger("itsm.mail")

BATCH = 50  # mails per pass and SMTP connection
# Outcomes of a pass are written at least this often (seconds of sending).
FLUSH_EVERY = 0.5
# A claim outlives the worst pass: every mail of the batch at the total timeout.
CLAIM_FOR = timedelta(seconds=BATCH * TOTAL_TIMEOUT + 60)
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
ERROR_LIMIT = 500
SYSTEM = "system"
FAILED_EVENT = "notification_failed"
# smtplib sends bytes as they are: the lines must already end in CRLF.
SMTP_LINES = compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class ClaimedMail:
    id: int
    incident_id: int
    to_address: str
    subject: str
    message_id: str
    language: str
    template: str
    context: dict[str, Any]
    created_at: datetime


def send_due(ctx: ServiceContext, worker_name: str, batch: int = BATCH) -> int:
    """One pass: send what is due; return how many mails were tried.

    Outcomes are written in one short transaction at least every FLUSH_EVERY
    seconds of sending and at the end of the pass, not one per mail: on SQLite every
    write queues behind the web's, and a write per mail let a burst of requests
    starve the loop (bench/notifications.py).  What a dying worker can send twice is
    thus at most FLUSH_EVERY seconds of mail, once its claim has expired."""
    settings = ctx.channels
    if not settings.mail_enabled:
        return 0
    claimed = claim_due(ctx, worker_name, batch)
    if not claimed:
        return 0
    outcomes: list[tuple[ClaimedMail, str | None]] = []
    try:
        target = parse_smtp_url(settings.smtp_url)
    except SmtpUrlError as error:
        record(ctx, [(mail, str(error)) for mail in claimed])
        return len(claimed)
    connection = SmtpConnection(target)
    broken: str | None = None  # the server could not be reached: the rest fail too
    flushed_at = time.monotonic()
    try:
        texts = _TaskNames(ctx)
        for mail in claimed:
            sent = mail if broken is not None else texts.named(with_signed_links(ctx, mail))
            outcomes.append(
                (mail, broken if broken is not None else _send(connection, settings, sent))
            )
            if outcomes[-1][1] is not None and connection.client is None:
                broken = outcomes[-1][1]
            if time.monotonic() - flushed_at >= FLUSH_EVERY:
                record(ctx, outcomes)
                outcomes, flushed_at = [], time.monotonic()
    finally:
        connection.close()
        if outcomes:
            record(ctx, outcomes)
    return len(claimed)


class _TaskNames:
    """A task mail names its task in the recipient's language, as the diagram of the
    incident's version says it (its translations, engine.workflow.translations); read
    here, at sending, so that queuing a mail inside a write stays cheap."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.texts: dict[int, DiagramTexts] = {}

    def named(self, mail: ClaimedMail) -> ClaimedMail:
        task = mail.context.get("task")
        if not isinstance(task, str) or not task:
            return mail
        name = self._texts(mail.incident_id).text(task, "name", mail.language)
        if not name:
            return mail
        context = {**mail.context, "task_label": name}
        subject = subject_of(mail.template, mail.language, context)
        return dataclasses.replace(mail, context=context, subject=subject)

    def _texts(self, incident_id: int) -> DiagramTexts:
        if incident_id not in self.texts:
            with self.ctx.db.read() as session:
                xml = session.scalar(
                    select(ProcessDefinition.bpmn_xml)
                    .join(Incident, Incident.definition_id == ProcessDefinition.id)
                    .where(Incident.id == incident_id)
                )
            self.texts[incident_id] = diagram_texts(xml) if xml else DiagramTexts()
        return self.texts[incident_id]


def with_signed_links(ctx: ServiceContext, mail: ClaimedMail) -> ClaimedMail:
    """A mail to a caller known only by address, with the signed links of its incident
    made now (valid 30 days from the sending; the outbox row holds no token)."""
    link = mail.context.get(SIGNED_LINK)
    if not isinstance(link, dict):
        return mail
    urls = {
        name: signed_url(
            ctx.audit_key,
            ctx.channels.base_url,
            mail.incident_id,
            str(link["address"]),
            int(link["version"]),
            ctx.now(),
            part,
        )
        for name, part in (
            ("incident_url", ""),
            ("confirm_url", "confirmation"),
            ("survey_url", "survey"),
        )
    }
    return dataclasses.replace(mail, context={**mail.context, **urls})


def _send(connection: SmtpConnection, settings: ChannelSettings, mail: ClaimedMail) -> str | None:
    """Send one mail; None when the server took it, else what went wrong."""
    try:
        connection.send(settings.mail_from, mail.to_address, build_message(settings, mail))
    except smtplib.SMTPRecipientsRefused as error:
        return f"recipient refused: {error.recipients}"
    except (smtplib.SMTPException, OSError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def claim_due(ctx: ServiceContext, worker_name: str, batch: int = BATCH) -> list[ClaimedMail]:
    now = ctx.now()
    with ctx.db.write() as session:
        rows = session.scalars(
            select(Notification)
            .where(
                Notification.status == "queued",
                Notification.next_attempt_at <= now,
                or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for row in rows:
            row.claimed_by = worker_name
            row.claimed_until = now + CLAIM_FOR
            claimed.append(
                ClaimedMail(
                    id=row.id,
                    incident_id=row.incident_id,
                    to_address=row.to_address,
                    subject=row.subject,
                    message_id=row.message_id,
                    language=row.language,
                    template=row.template,
                    context=dict(row.context or {}),
                    created_at=row.created_at,
                )
            )
        return claimed


def thread_root(settings: ChannelSettings, incident_id: int) -> str:
    """The same `References` for every mail of an incident, so mail clients thread
    them; a reply still names the mail it answers (In-Reply-To)."""
    host = settings.mail_from.rpartition("@")[2].strip("<> ") or "localhost"
    return f"<incident-{incident_id}@{host}>"


def _subject_header(subject: str) -> str:
    """The subject, its `[INC-000123]` tag kept readable in the raw header (filters
    and replies match it) and the rest encoded as UTF-8 when it is not ASCII."""
    if subject.isascii():
        return subject
    tag, space, rest = subject.partition(" ")
    if not (tag.startswith("[") and tag.endswith("]") and tag.isascii() and space):
        return Header(subject, "utf-8").encode()
    header = Header(tag, "us-ascii")
    header.append(rest, "utf-8")  # joined by one space
    return header.encode()


def build_message(settings: ChannelSettings, mail: ClaimedMail) -> bytes:
    """The mail as sent: plain text with an HTML alternative.  Built with the
    compat32 classes: EmailMessage's header objects cost several times as much per
    mail, and the loop sends thousands in a burst."""
    body = render(mail.template, mail.language, mail.context)
    message = MIMEMultipart("alternative")
    message["Subject"] = _subject_header(mail.subject)
    message["From"] = settings.mail_from
    message["To"] = mail.to_address
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(mail.created_at)
    message["Auto-Submitted"] = "auto-generated"
    message["References"] = thread_root(settings, mail.incident_id)
    message["Content-Language"] = "en" if mail.language == "en" else "zh-Hant-TW"
    message.attach(MIMEText(body.text, "plain", "utf-8"))
    message.attach(MIMEText(body.html, "html", "utf-8"))
    return message.as_bytes(policy=SMTP_LINES)


def record(ctx: ServiceContext, outcomes: list[tuple[ClaimedMail, str | None]]) -> None:
    """Mark mails sent (error None) or count a failed attempt, in one transaction."""
    for mail, error in outcomes:
        if error is not None:
            log.warning("mail %s to %s failed: %s", mail.id, mail.to_address, error)
    with ctx.db.write() as session:
        now = ctx.now()
        for mail, error in outcomes:
            row = session.get(Notification, mail.id)
            if row is None or row.status != "queued":
                continue
            row.attempts += 1
            row.claimed_by = None
            row.claimed_until = None
            if error is None:
                row.status = "sent"
                row.sent_at = now
                row.last_error = None
                continue
            row.last_error = error[:ERROR_LIMIT]
            if row.attempts < MAX_ATTEMPTS:
                row.next_attempt_at = now + BACKOFF[row.attempts - 1]
                continue
            row.status = "failed"
            row.next_attempt_at = None
            incident = session.get_one(Incident, row.incident_id)
            EventLog(session, incident).add(
                FAILED_EVENT,
                SYSTEM,
                now,
                to=row.to_address,
                subject=row.subject,
                error=row.last_error,
            )
