"""Notes on an incident: staff's and the caller's own, and notes that count as the
caller's though another channel carried them (a mail, a signed link, a program
posting `on_behalf_of` the caller)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.paging import parse_page
from engine.domain.roles import INTEGRATION, STAFF_ROLES
from engine.persistence.models import Incident, Note
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid, NotFound
from engine.services.incidents.audience import audience_of, names_for, shown_note
from engine.services.incidents.callers import NOT_THE_CALLER, caller_author
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.resuming import resume_if_awaiting_caller
from engine.services.incidents.views import note_view
from engine.services.incidents.visibility import load_visible
from engine.services.paging import Total, counted, paged

NOTE_LIMIT = 20_000
ON_BEHALF = "on_behalf_of"
# Runs inside the write of a caller's note or a report, after its rows are added.
Also = Callable[[Session, Incident, datetime], None]


def note_text_errors(text: object) -> dict[str, str]:
    if not isinstance(text, str) or not text.strip():
        return {"text": "is required"}
    if len(text) > NOTE_LIMIT:
        return {"text": f"must be at most {NOTE_LIMIT} characters"}
    return {}


def add_note(ctx: ServiceContext, actor: Actor, incident_id: int, payload: Any) -> dict[str, Any]:
    """A note by staff or the caller; from an `integration` user with `on_behalf_of`,
    a note by the incident's caller that the program carried (`via`)."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    if ON_BEHALF in payload:
        return _note_on_behalf(ctx, actor, incident_id, payload)
    text = payload.get("text")
    internal = payload.get("internal", False)
    errors = note_text_errors(text)
    if not isinstance(internal, bool):
        errors["internal"] = "must be true or false"
    if errors:
        raise Invalid("invalid note", errors)
    staff = actor.has_any(STAFF_ROLES)
    with ctx.db.write() as session:
        incident = load_visible(session, actor, incident_id, for_update=True)
        if not staff and incident.caller_id != actor.id:
            raise Forbidden("only the reporter and staff write notes")
        if internal and not staff:
            raise Forbidden("only staff write internal work notes")
        now = ctx.now()
        note = _write_note(session, incident, actor.username, str(text), now, internal=internal)
        log = EventLog(session, incident)
        log.add("note_added", actor.username, now, internal=internal)
        if incident.caller_id == actor.id:
            resume_if_awaiting_caller(ctx, incident, log, actor.username, now)
        session.flush()
        return note_view(note)


def _note_on_behalf(
    ctx: ServiceContext, actor: Actor, incident_id: int, payload: dict[str, Any]
) -> dict[str, Any]:
    if INTEGRATION not in actor.roles:
        raise Forbidden(
            "only integration users write notes on behalf of the caller",
            {ON_BEHALF: "only integration users may send it"},
        )
    who = payload.get(ON_BEHALF)
    errors = note_text_errors(payload.get("text"))
    if not isinstance(who, str) or not who.strip():
        errors[ON_BEHALF] = "must be the caller's username or e-mail address"
    for name in payload:
        if name not in ("text", ON_BEHALF):
            errors[name] = "is not a field of a note on behalf of the caller"
    if errors:
        raise Invalid("invalid note", errors)
    # An integration user reads every incident (visibility): only existence is checked.
    return _caller_note(
        ctx, incident_id, str(who), str(payload["text"]), via=actor.username, field=ON_BEHALF
    )


def add_caller_note(
    ctx: ServiceContext,
    incident_id: int,
    author: str,
    text: str,
    *,
    via: str | None,
    also: Also | None = None,
) -> dict[str, Any]:
    """A note by the incident's caller, however it came (inbound mail, the signed link,
    a program): visible to the reporter, it resumes a suspension awaiting them.

    `author` is the caller's username or address (the caller of this function checked
    that the message is theirs; a user's address is stored as their username). `via`:
    the integration user that carried it, if any. `also` runs inside the same write
    transaction (e.g. to store the inbound mail and its attachments with the note).
    422 naming `author` when it is not the incident's caller; 404 for no incident."""
    return _caller_note(ctx, incident_id, author, text, via=via, field="author", also=also)


def _caller_note(
    ctx: ServiceContext,
    incident_id: int,
    who: str,
    text: str,
    *,
    via: str | None,
    field: str,
    also: Also | None = None,
) -> dict[str, Any]:
    errors = note_text_errors(text)
    if errors:
        raise Invalid("invalid note", errors)
    with ctx.db.write() as session:
        incident = session.get(Incident, incident_id, with_for_update={"of": Incident})
        if incident is None:
            raise NotFound(f"incident {incident_id} not found")
        author = caller_author(incident, who)
        if author is None:
            raise Invalid("not the caller", {field: NOT_THE_CALLER})
        now = ctx.now()
        note = _write_note(session, incident, author, text, now, internal=False, via=via)
        log = EventLog(session, incident)
        data: dict[str, Any] = {"internal": False}
        if via is not None:
            data["via"] = via
        log.add("note_added", author, now, **data)
        resume_if_awaiting_caller(ctx, incident, log, author, now)
        if also is not None:
            also(session, incident, now)
        session.flush()
        return note_view(note)


def add_dedup_note(
    ctx: ServiceContext,
    session: Session,
    incident: Incident,
    actor: Actor,
    text: str,
    now: datetime,
) -> None:
    """A program reported again what an open incident already is (same dedup key):
    its report becomes a note there, by the program."""
    _write_note(session, incident, actor.username, text[:NOTE_LIMIT], now, internal=False)
    log = EventLog(session, incident)
    log.add("note_added", actor.username, now, internal=False, dedup_key=incident.dedup_key)
    if incident.caller_id == actor.id:
        resume_if_awaiting_caller(ctx, incident, log, actor.username, now)


def _write_note(
    session: Session,
    incident: Incident,
    author: str,
    text: str,
    now: datetime,
    *,
    internal: bool,
    via: str | None = None,
) -> Note:
    note = Note(
        incident_id=incident.id, author=author, at=now, text=text, internal=internal, via=via
    )
    session.add(note)
    incident.updated_at = now
    return note


def list_notes(
    ctx: ServiceContext, actor: Actor, incident_id: int, args: Mapping[str, str] | None = None
) -> tuple[list[dict[str, Any]], Total]:
    """One page of the notes the actor may read, oldest first, and their total."""
    page, errors = parse_page(args or {})
    if errors:
        raise Invalid("invalid query", errors)
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        query = select(Note).where(Note.incident_id == incident.id)
        audience = audience_of(actor, incident)
        if not audience.staff:
            query = query.where(Note.internal.is_(False))
        if audience.kind == "caller":
            # Vendor notes stay between the desk and the vendor (contract Part 2).
            query = query.where(Note.vendor.is_(False))
        total = counted(session, query)
        notes = [note_view(n) for n in session.scalars(paged(query.order_by(Note.id), page))]
        names = names_for(session, audience, notes=notes)
        return [shown_note(n, names) for n in notes], total
