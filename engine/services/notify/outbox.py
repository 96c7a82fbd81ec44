"""The mail outbox: which mails a committing transaction queues.

At every commit (engine.services.notify.committed) the transaction's new events and
newly ready tasks become `Notification` rows, per the contract's table:

- `created` → the caller: an acknowledgement with the number and a link;
- a user task becomes ready → its assignee, else its lane's active members with an
  address who kept task mails on (vendor lane: the task's organisation only);
  `director_review` ready → every director;
- `assigned` → the assignee;
- `management_escalation` → every incident manager;
- `sla_warning` at 75 % and `sla_breached` → the assignees of the open tasks (or
  their lanes) and every incident manager;
- `note_added` visible to the reporter (not internal, not vendor, not a program's
  repeated report of the same `dedup_key`) → the caller;
- `resolved` → the caller, with the resolution and links to confirm or reject;
- `closed` → the caller, with the survey link while the survey is unanswered.

Only users who may see the incident are mailed.  One mail per recipient per
incident per transaction: where rows overlap (the manager's escalation and the
manager's ready review, a resolution and its confirmation task), the first in the
order above wins.  *(Ours)*: nobody is mailed about their own action (the actor of
the event, or of the step that made a task ready), except the caller's
acknowledgement of an incident they reported themselves.

Links point at ITSM_BASE_URL; a caller known only by address gets the signed caller
links instead (engine.services.incidents.caller_links), as they have no account.

Without ITSM_SMTP_URL nothing is queued.  Rendering and sending happen later,
outside any transaction (engine.services.notify.sender); this producer only adds
rows, with a few queries per transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.persistence.models import Event, Incident, Note, Notification, UserTaskRow
from engine.services.context import ChannelSettings, channel_settings_of
from engine.services.incidents.pages import RESOLUTION_FIELDS
from engine.services.notify.committed import Written, produce_at_commit
from engine.services.notify.mail_text import subject_of
from engine.services.notify.recipients import (
    DIRECTOR,
    INCIDENT_MANAGER,
    Directory,
    Recipient,
    caller_recipient,
)

# In a mail's context: the caller's address and link version, for signed links.
SIGNED_LINK = "signed_link"
TASK_READY = "task_ready"  # the `event` of a ready task's mail (no event row)
SURVEY_TASK = "record_feedback"
DIRECTOR_TASK = "director_review"
WARNING_PERCENT = 75
CALLER_EVENTS = frozenset({"created", "note_added", "resolved", "closed"})


@dataclass
class _Mails:
    """The mails of one incident in one transaction, one per address."""

    incident: Incident
    settings: ChannelSettings
    now: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)

    def queue(
        self,
        recipients: Iterable[Recipient],
        event_type: str,
        template: str,
        data: dict[str, Any],
        *,
        event: Event | None = None,
        actor: str | None = None,
    ) -> None:
        for recipient in recipients:
            key = recipient.address.lower()
            if key in self.addresses or (actor is not None and _is_actor(recipient, actor)):
                continue
            self.addresses.add(key)
            context = {**snapshot(self.incident, self.settings), **data}
            if recipient.username is None:
                # No account to sign in with: the sender puts signed links in the mail
                # when it sends it (the outbox keeps no token that opens the incident).
                context[SIGNED_LINK] = {
                    "address": recipient.address,
                    "version": self.incident.caller_link_version,
                }
            self.rows.append(
                {
                    "incident_id": self.incident.id,
                    "event_id": event.id if event is not None else None,
                    "event": event_type,
                    "user_id": recipient.user_id,
                    "to_address": recipient.address,
                    "language": recipient.language,
                    "template": template,
                    "context": context,
                    "subject": subject_of(template, recipient.language, context),
                    "message_id": new_message_id(self.settings),
                    "status": "queued",
                    "attempts": 0,
                    "next_attempt_at": self.now,
                    "created_at": self.now,
                }
            )


def _is_actor(recipient: Recipient, actor: str) -> bool:
    if recipient.username is not None:
        return recipient.username == actor
    return recipient.address.lower() == actor.lower()


def new_message_id(settings: ChannelSettings) -> str:
    host = settings.mail_from.rpartition("@")[2].strip("<> ") or "localhost"
    return f"<{uuid.uuid4().hex}@{host}>"


def incident_url(settings: ChannelSettings, incident: Incident) -> str:
    """The incident's page for someone who signs in (staff, a caller with an account)."""
    return f"{settings.base_url.rstrip('/')}/incidents/{incident.id}"


def snapshot(incident: Incident, settings: ChannelSettings) -> dict[str, Any]:
    """What every template may show, frozen when the mail is queued."""
    url = incident_url(settings, incident)
    return {
        "incident_id": incident.id,
        "number": incident.number or f"#{incident.id}",
        "title": incident.title,
        "status": incident.status,
        "priority": incident.priority,
        "major": incident.major,
        "incident_url": url,
        "confirm_url": f"{url}#confirmation",
        "survey_url": f"{url}#survey",
    }


@produce_at_commit
def queue_mails(session: Session, written: Written) -> None:
    """The outbox producer: this transaction's mails, added to it."""
    if not (written.events or written.ready_tasks):
        return
    settings = channel_settings_of(session)
    if not settings.mail_enabled:
        return
    incident_ids = list(
        dict.fromkeys(
            [e.incident_id for e in written.events if e.type != "notification_failed"]
            + [t.incident_id for t in written.ready_tasks]
        )
    )
    directory = Directory(session)
    rows: list[dict[str, Any]] = []
    for incident_id in incident_ids:
        incident = session.get(Incident, incident_id)
        if incident is None:
            continue
        events = [e for e in written.events if e.incident_id == incident_id]
        tasks = [t for t in written.ready_tasks if t.incident_id == incident_id]
        moments = [e.at for e in events] + [t.created_at for t in tasks]
        mails = _Mails(incident, settings, max(moments))
        for event in events:
            _for_event(session, directory, mails, event, events)
        step_actor = events[-1].actor if events else None
        for task in tasks:
            _for_ready_task(directory, mails, task, step_actor)
        rows += mails.rows
    if rows:
        # One INSERT of plain rows: no ORM objects to track in a transaction that
        # is about to commit.
        session.execute(insert(Notification), rows)


def _for_event(
    session: Session, directory: Directory, mails: _Mails, event: Event, events: list[Event]
) -> None:
    incident = mails.incident
    data = event.data or {}
    kind = event.type
    if kind in CALLER_EVENTS:
        caller = caller_recipient(incident)
        if caller is None:
            return
        if kind == "created":
            # The acknowledgement goes to a caller who reported it themself too.
            mails.queue([caller], kind, "created", {}, event=event)
            return
        template, extra = _caller_mail(session, incident, event, events)
        if template is not None:
            mails.queue([caller], kind, template, extra, event=event, actor=event.actor)
    elif kind == "assigned":
        user = directory.by_username(str(data.get("assignee") or ""))
        if user is not None:
            about = {"task": event.task, "task_url": _task_url(mails, data.get("task_id"))}
            assignee = directory.users([user], incident)
            mails.queue(assignee, kind, "assigned", about, event=event, actor=event.actor)
    elif kind == "management_escalation":
        managers = directory.people(directory.members(INCIDENT_MANAGER), incident)
        mails.queue(managers, kind, kind, {"task": event.task}, event=event, actor=event.actor)
    elif kind in ("sla_warning", "sla_breached"):
        if kind == "sla_warning" and data.get("percent") != WARNING_PERCENT:
            return
        people: list[Recipient] = []
        for task in directory.open_tasks(incident):
            people += directory.task_people(task, incident, muted_too=True)
        people += directory.people(directory.members(INCIDENT_MANAGER), incident)
        clock = {"clock": data.get("clock"), "percent": data.get("percent")}
        mails.queue(people, kind, kind, clock, event=event, actor=event.actor)


def _for_ready_task(
    directory: Directory, mails: _Mails, task: UserTaskRow, step_actor: str | None
) -> None:
    incident = mails.incident
    data = {
        "task": task.name,
        "task_label": task.label,
        "lane": task.lane,
        "task_url": _task_url(mails, task.id),
    }
    if task.name == DIRECTOR_TASK and task.claimed_by is None:
        directors = directory.people(directory.members(DIRECTOR), incident)
        mails.queue(directors, TASK_READY, DIRECTOR_TASK, data, actor=step_actor)
        return
    people = directory.task_people(task, incident, muted_too=False)
    mails.queue(people, TASK_READY, TASK_READY, data, actor=step_actor)


def _caller_mail(
    session: Session, incident: Incident, event: Event, events: list[Event]
) -> tuple[str | None, dict[str, Any]]:
    """The caller's mail about a note, a resolution or the closure."""
    if event.type == "note_added":
        note = _visible_note(session, event)
        return ("note", {"note": note.text}) if note is not None else (None, {})
    if event.type == "resolved":
        return "resolved", {"resolution": _resolution(events)}
    answered = incident.survey_answered_at is not None or any(
        e.type == "task_completed" and e.task == SURVEY_TASK for e in events
    )
    return "closed", {"survey_open": not answered}


def _task_url(mails: _Mails, task_id: Any) -> str:
    base = mails.settings.base_url.rstrip("/")
    return f"{base}/tasks/{task_id}" if task_id else incident_url(mails.settings, mails.incident)


def _visible_note(session: Session, event: Event) -> Note | None:
    """The note of a `note_added` when the caller may read it."""
    data = event.data or {}
    # A program's repeated report (same dedup key) is not news for the caller: a
    # monitor firing every minute would mail them every minute.
    if data.get("internal") or data.get("vendor") or data.get("dedup_key"):
        return None
    note = session.scalar(
        select(Note)
        .where(
            Note.incident_id == event.incident_id,
            Note.at == event.at,
            Note.author == event.actor,
        )
        .order_by(Note.id.desc())
        .limit(1)
    )
    if note is None or note.internal or note.vendor:
        return None
    return note


def _resolution(events: list[Event]) -> str | None:
    """The resolution typed into the task whose completion resolved the incident."""
    for event in reversed(events):
        if event.type != "task_completed":
            continue
        values = (event.data or {}).get("values") or {}
        for name in RESOLUTION_FIELDS:
            text = values.get(name)
            if isinstance(text, str) and text.strip():
                return text
    return None
