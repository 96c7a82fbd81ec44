"""Whose incident it is: the caller named at creation, and notes that count as theirs.

Every incident has one caller (contract Part 2): a user (`Incident.caller_id`), or an
address only (`Incident.caller_email`). Staff and `integration` users name the caller
with `caller` (a username) or `caller_email`; an address that is a user's makes that
user the caller. Anyone else reports for themself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.domain.roles import INTEGRATION, STAFF_ROLES
from engine.persistence.models import Incident, User
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid
from engine.services.people.profiles import email_problem, normal_email, user_by_email

CALLER_FIELDS = ("caller", "caller_email")
DEDUP_FIELD = "dedup_key"
DEDUP_MAX = 200
ONLY_STAFF = "only staff and integration users name the caller"
ONLY_INTEGRATION = "only integration users send a dedup_key"
NOT_THE_CALLER = "is not the incident's caller"


@dataclass(frozen=True)
class CallerRequest:
    """What the report asked for (validated, not yet resolved against the users)."""

    username: str | None = None
    email: str | None = None
    dedup_key: str | None = None


@dataclass(frozen=True)
class Caller:
    user_id: int | None
    email: str | None  # only when the caller is known by address alone
    name: str  # the username, else the address (the `created` event's `caller`)


def read_caller_request(actor: Actor, payload: dict[str, Any]) -> CallerRequest:
    """The caller fields of a report; 403 naming the field when the actor may not set
    it (a reporter reports for themself), 422 naming it when it is malformed."""
    staff_or_program = actor.has_any(STAFF_ROLES) or INTEGRATION in actor.roles
    forbidden = {
        name: ONLY_STAFF for name in CALLER_FIELDS if name in payload and not staff_or_program
    }
    if DEDUP_FIELD in payload and INTEGRATION not in actor.roles:
        forbidden[DEDUP_FIELD] = ONLY_INTEGRATION
    if forbidden:
        raise Forbidden("you may not set these fields", forbidden)
    errors: dict[str, str] = {}
    username = payload.get("caller")
    email = payload.get("caller_email")
    key = payload.get(DEDUP_FIELD)
    if username is not None and (not isinstance(username, str) or not username.strip()):
        errors["caller"] = "must be a username"
    if email is not None:
        problem = email_problem(email)
        if problem:
            errors["caller_email"] = problem
    if username is not None and email is not None:
        errors["caller_email"] = "give either caller or caller_email, not both"
    if key is not None and (not isinstance(key, str) or not key.strip()):
        errors[DEDUP_FIELD] = "must be a non-empty string"
    elif isinstance(key, str) and len(key) > DEDUP_MAX:
        errors[DEDUP_FIELD] = f"must be at most {DEDUP_MAX} characters"
    if errors:
        raise Invalid("invalid caller", errors)
    return CallerRequest(
        username=username.strip() if isinstance(username, str) else None,
        email=normal_email(email) if isinstance(email, str) else None,
        dedup_key=key.strip() if isinstance(key, str) else None,
    )


def resolve_caller(session: Session, actor: Actor, asked: CallerRequest) -> Caller:
    """The caller the report is for: the named user, the user with the address, the
    address itself, else the creating user."""
    if asked.username is not None:
        user = session.scalar(select(User).where(User.username == asked.username))
        if user is None or not user.active:
            raise Invalid("unknown caller", {"caller": "no active user has this username"})
        return Caller(user.id, None, user.username)
    if asked.email is not None:
        owner = user_by_email(session, asked.email)
        if owner is not None and owner.active:
            return Caller(owner.id, None, owner.username)
        return Caller(None, asked.email, asked.email)
    return Caller(actor.id, None, actor.username)


def open_incident_with_key(session: Session, key: str, *, lock: bool) -> Incident | None:
    """The newest incident with this dedup key that is not closed."""
    query = (
        select(Incident)
        .where(Incident.dedup_key == key, Incident.status != "closed")
        .order_by(Incident.id.desc())
        .limit(1)
    )
    if lock:
        query = query.with_for_update(of=Incident)
    return session.scalar(query)


def caller_author(incident: Incident, who: str) -> str | None:
    """The note author that `who` (a username or an address) is as this incident's
    caller: the caller's username, or the address of an address-only caller. None
    when `who` is not the caller."""
    wanted = who.strip()
    if incident.caller is not None:
        user = incident.caller
        if wanted == user.username or (
            user.email is not None and wanted.lower() == user.email.lower()
        ):
            return user.username
        return None
    if incident.caller_email is not None and wanted.lower() == incident.caller_email.lower():
        return incident.caller_email
    return None


def is_caller(incident: Incident, author: str) -> bool:
    """Whether a note by `author` (as stored) is the caller's."""
    return caller_author(incident, author) == author


OTHER_OPEN_SHOWN = 20


def caller_card(ctx: ServiceContext, actor: Actor, username: str) -> dict[str, Any]:
    """Who is calling and their open incidents, newest first (the desk's "take a
    call" page shows them as possible duplicates). Staff only; 422 naming `caller`
    for no such active user."""
    if not actor.has_any(STAFF_ROLES):
        raise Forbidden("only staff look up callers")
    with ctx.db.read() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.active:
            raise Invalid("unknown caller", {"caller": "no active user has this username"})
        query = select(Incident).where(
            (Incident.caller_id == user.id)
            | (func.lower(Incident.caller_email) == (user.email or "").lower()),
            Incident.status != "closed",
        )
        open_total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(Incident.id.desc()).limit(OTHER_OPEN_SHOWN))
        return {
            "username": user.username,
            "display_name": user.display_name,
            "email": user.email,
            "open_total": open_total,
            "open": [
                {
                    "id": i.id,
                    "number": i.number,
                    "title": i.title,
                    "status": i.status,
                    "priority": i.priority,
                    "created_at": i.created_at.isoformat(),
                }
                for i in rows
            ],
        }
