"""The mail loop's pass: claim the due mails of the outbox, send them over SMTP
outside any transaction, record what happened.

Claiming is the SLA worker's way (engine.services.incidents.timers): a short write
transaction takes due rows (on PostgreSQL FOR UPDATE SKIP LOCKED, so two workers
take different rows; on SQLite writers queue and the claim is re-checked inside
the lock) and marks them `claimed_by` this worker until `claimed_until`.  A worker
that dies leaves its rows claimed only until then; another worker then takes them.

A mail is marked `sent` right after the SMTP server accepted it, and a sent mail is
never taken again.  A failure (server down, slow past the timeouts, recipient
refused) counts an attempt and waits (BACKOFF); after MAX_ATTEMPTS the mail is
`failed` and the incident gets a `notification_failed` event (actor `system`).
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import or_, select

from engine.persistence.models import Incident, Notification
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.incidents.event_log import EventLog
from engine.services.notify import outbox  # noqa: F401  (registers the producer)
from engine.services.notify.mail_text import render
from engine.services.notify.smtp import TOTAL_TIMEOUT, SmtpConnection, SmtpUrlError, parse_smtp_url

log = logging.getLogger("itsm.mail")

BATCH = 20
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
    """One pass: send what is due; return how many mails were tried."""
    settings = ctx.channels
    if not settings.mail_enabled:
        return 0
    claimed = claim_due(ctx, worker_name, batch)
    if not claimed:
        return 0
    try:
        target = parse_smtp_url(settings.smtp_url)
    except SmtpUrlError as error:
        for mail in claimed:
            record_failure(ctx, mail, worker_name, str(error))
        return len(claimed)
    connection = SmtpConnection(target)
    broken: str | None = None  # the server could not be reached: the rest fail too
    try:
        for mail in claimed:
            if broken is not None:
                record_failure(ctx, mail, worker_name, broken)
                continue
            try:
                connection.send(build_message(settings, mail))
            except smtplib.SMTPRecipientsRefused as error:
                record_failure(ctx, mail, worker_name, f"recipient refused: {error.recipients}")
            except (smtplib.SMTPException, OSError) as error:
                reason = f"{type(error).__name__}: {error}"
                if connection.client is None:
                    broken = reason
                record_failure(ctx, mail, worker_name, reason)
            else:
                record_sent(ctx, mail.id, worker_name)
    finally:
        connection.close()
    return len(claimed)


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


def build_message(settings: ChannelSettings, mail: ClaimedMail) -> EmailMessage:
    body = render(mail.template, mail.language, mail.context)
    message = EmailMessage()
    message["Subject"] = mail.subject
    message["From"] = settings.mail_from
    message["To"] = mail.to_address
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(mail.created_at)
    message["Auto-Submitted"] = "auto-generated"
    message["References"] = thread_root(settings, mail.incident_id)
    message["Content-Language"] = "en" if mail.language == "en" else "zh-Hant-TW"
    message.set_content(body.text)
    message.add_alternative(body.html, subtype="html")
    return message


def record_sent(ctx: ServiceContext, mail_id: int, worker_name: str) -> None:
    with ctx.db.write() as session:
        row = session.get(Notification, mail_id)
        if row is None:
            return
        row.status = "sent"
        row.sent_at = ctx.now()
        row.attempts += 1
        row.last_error = None
        row.claimed_by = None
        row.claimed_until = None


def record_failure(ctx: ServiceContext, mail: ClaimedMail, worker_name: str, error: str) -> None:
    error = error[:ERROR_LIMIT]
    log.warning("mail %s to %s failed: %s", mail.id, mail.to_address, error)
    with ctx.db.write() as session:
        row = session.get(Notification, mail.id)
        if row is None or row.status != "queued":
            return
        now = ctx.now()
        row.attempts += 1
        row.last_error = error
        row.claimed_by = None
        row.claimed_until = None
        if row.attempts < MAX_ATTEMPTS:
            row.next_attempt_at = now + BACKOFF[row.attempts - 1]
            return
        row.status = "failed"
        row.next_attempt_at = None
        incident = session.get_one(Incident, row.incident_id)
        EventLog(session, incident).add(
            FAILED_EVENT, SYSTEM, now, to=row.to_address, subject=row.subject, error=error
        )

