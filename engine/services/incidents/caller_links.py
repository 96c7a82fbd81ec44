"""Signed caller links: making them, opening them, revoking them, and who "the caller"
is when they answer (a signed-in user, or the address of a link session).

A link opens one incident in the browser for the address it was made for
(contract Part 2, "People, callers and contact"): read the status, add a note,
answer the confirmation and the survey. The web layer swaps the token at once for a
`LinkSession` kept in the session cookie; every use re-reads the incident's
`caller_link_version`, so revoking the links from the incident page also ends the
sessions already opened with them. The API never accepts a link (bearer only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.caller_link import Refusal, link_key, make_token, parse_token, refusal
from engine.domain.roles import HANDLER_ROLES
from engine.persistence.audit_key import audit_key_of
from engine.persistence.models import Incident, Note
from engine.services.context import Actor, ServiceContext, channel_settings_of
from engine.services.errors import Forbidden, NotFound
from engine.services.incidents.audience import (
    Audience,
    audience_of,
    names_for,
    shown_detail,
    shown_events,
    shown_note,
)
from engine.services.incidents.callers import caller_author
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.pages import resolution_text
from engine.services.incidents.views import events_of, incident_detail, note_view
from engine.services.incidents.visibility import load_visible

REVOKED_EVENT = "caller_links_revoked"
# Where a link may lead once opened: a part of the caller's page.
NEXT_PATHS = ("", "confirmation", "survey", "notes")


class LinkRefused(Forbidden):
    """403: the link (or the session opened with it) no longer opens the incident."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(f"the caller link is {reason.replace('_', ' ')}", {"link": reason})
        self.reason: Refusal = reason


@dataclass(frozen=True)
class LinkSession:
    """What the browser keeps once a link is opened (never the token)."""

    incident_id: int
    address: str
    version: int
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident_id,
            "address": self.address,
            "version": self.version,
            "expires": int(self.expires_at.timestamp()),
        }

    @classmethod
    def from_dict(cls, raw: object) -> LinkSession | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                int(raw["incident"]),
                str(raw["address"]),
                int(raw["version"]),
                datetime.fromtimestamp(int(raw["expires"]), UTC),
            )
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            return None


@dataclass(frozen=True)
class CallerRef:
    """Who answers as the incident's caller: a signed-in user (`actor`) or the holder of
    a link session (`link`)."""

    actor: Actor | None = None
    link: LinkSession | None = None


def caller_address(incident: Incident) -> str | None:
    """The address a link for this incident is made for: the address-only caller's, else
    the caller user's e-mail."""
    if incident.caller is not None:
        return incident.caller.email
    return incident.caller_email


def caller_link(
    ctx: ServiceContext, incident: Incident, address: str, now: datetime, next_path: str = ""
) -> str:
    """The absolute URL of a signed link to `incident` for `address` (its caller's),
    valid for 30 days from `now` until revoked; `next_path` (one of NEXT_PATHS) is the
    part of the caller's page it opens at."""
    return _signed_url(ctx.audit_key, ctx.channels.base_url, incident, address, now, next_path)


def caller_link_in(
    session: Session, incident: Incident, address: str, now: datetime, next_path: str = ""
) -> str:
    """`caller_link` for code that has a session but no context (a commit-time producer
    such as the outbox): the key and base URL of the context that owns the database."""
    engine = session.get_bind().engine
    base_url = channel_settings_of(session).base_url
    return _signed_url(audit_key_of(engine), base_url, incident, address, now, next_path)


def _signed_url(
    audit_key: bytes,
    base_url: str,
    incident: Incident,
    address: str,
    now: datetime,
    next_path: str,
) -> str:
    return signed_url(
        audit_key, base_url, incident.id, address, incident.caller_link_version, now, next_path
    )


def signed_url(
    audit_key: bytes,
    base_url: str,
    incident_id: int,
    address: str,
    version: int,
    now: datetime,
    next_path: str = "",
) -> str:
    """A link for an incident at a known link version: what the mail sender makes when
    it sends (the outbox keeps the address and version, never a token)."""
    token = make_token(link_key(audit_key), incident_id, address, version, now)
    url = f"{base_url.rstrip('/')}/c/{token}"
    if next_path and next_path in NEXT_PATHS:
        url += f"?next={quote(next_path)}"
    return url


def open_link(ctx: ServiceContext, token: str) -> LinkSession:
    """Check a token (LinkRefused naming why not) and give the session it opens."""
    claims = parse_token(token)
    if claims is None:
        raise LinkRefused("tampered")
    now = ctx.now()
    with ctx.db.read() as session:
        incident = session.get(Incident, claims.incident_id)
        address = caller_address(incident) if incident is not None else None
        version = incident.caller_link_version if incident is not None else 0
        why = refusal(
            link_key(ctx.audit_key), token, address=address, current_version=version, now=now
        )
        if why is not None or address is None:
            raise LinkRefused(why or "tampered")
        return LinkSession(claims.incident_id, address.lower(), claims.version, claims.expires_at)


def check_link(
    session: Session, link: LinkSession, now: datetime, *, for_update: bool = False
) -> Incident:
    """The incident of a link session, re-checked: still the caller's address, same link
    version (a revoke ends the session), not expired."""
    incident = session.get(
        Incident, link.incident_id, with_for_update={"of": Incident} if for_update else None
    )
    address = caller_address(incident) if incident is not None else None
    if incident is None or address is None or address.lower() != link.address.lower():
        raise LinkRefused("revoked")
    if incident.caller_link_version != link.version:
        raise LinkRefused("revoked")
    if link.expires_at <= now:
        raise LinkRefused("expired")
    return incident


def the_caller(
    session: Session,
    caller: CallerRef,
    incident_id: int,
    now: datetime,
    *,
    for_update: bool = False,
) -> tuple[Incident, str, Audience]:
    """The incident, the name the caller's events carry, and the caller's audience.

    A signed-in user who may not see the incident gets 404 (as everywhere); one who
    sees it but is not its caller (staff, a vendor) 403: the desk completes these
    tasks from the task page. A link session opens its own incident only (403
    "other_incident" for any other)."""
    if caller.link is not None:
        if caller.link.incident_id != incident_id:
            raise LinkRefused("other_incident")
        incident = check_link(session, caller.link, now, for_update=for_update)
        name = caller_author(incident, caller.link.address) or caller.link.address
        return incident, name, Audience("caller", name)
    if caller.actor is None:
        raise NotFound(f"incident {incident_id} not found")
    incident = load_visible(session, caller.actor, incident_id, for_update=for_update)
    if incident.caller_id != caller.actor.id:
        raise Forbidden("only the incident's caller answers here")
    return incident, caller.actor.username, audience_of(caller.actor, incident)


def revoke_links(ctx: ServiceContext, actor: Actor, incident_id: int) -> int:
    """Every link made so far for this incident stops working, and so does every
    session opened with one. Returns the new link version."""
    if not actor.has_any(HANDLER_ROLES):
        raise Forbidden("only the service desk, engineers and the incident manager revoke")
    with ctx.db.write() as session:
        incident = load_visible(session, actor, incident_id, for_update=True)
        now = ctx.now()
        incident.caller_link_version += 1
        incident.updated_at = now
        EventLog(session, incident).add(
            REVOKED_EVENT, actor.username, now, version=incident.caller_link_version
        )
        session.flush()
        return incident.caller_link_version


def link_page(ctx: ServiceContext, link: LinkSession) -> dict[str, Any]:
    """What the link session's page shows: the incident as its caller sees it."""
    with ctx.db.read() as session:
        now = ctx.now()
        incident, name, audience = the_caller(session, CallerRef(link=link), link.incident_id, now)
        detail = incident_detail(session, incident, now, include_events=False)
        events = events_of(session, incident.id, include_internal=False)
        notes_query = (
            select(Note)
            .where(
                Note.incident_id == incident.id,
                Note.internal.is_(False),
                # Vendor notes stay between the desk and the vendor (contract Part 2).
                Note.vendor.is_(False),
            )
            .order_by(Note.id)
        )
        notes = [note_view(n) for n in session.scalars(notes_query)]
        if incident.suspend_category == "awaiting_reporter":
            detail["suspend_reason"] = incident.suspend_reason
        detail["suspend_category"] = incident.suspend_category
        names = names_for(session, audience, events=events, notes=notes, incident_id=incident.id)
        return {
            "incident": shown_detail(session, audience, detail),
            "caller_name": name,
            "events": shown_events(events, names),
            "notes": [shown_note(n, names) for n in notes],
            "resolution": resolution_text(events)
            if incident.status in ("resolved", "closed")
            else None,
        }
