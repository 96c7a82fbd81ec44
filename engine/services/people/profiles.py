"""A user's contact and preferences: e-mail address, language, "task ready" mails.

`language` is the contract's name for the per-user locale (`User.locale`). An address
is stored in lower case, so that one mailbox cannot belong to two users by case alone
and mail in (which matches senders case-insensitively) finds its user by equality.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine.domain.paging import parse_page
from engine.domain.roles import STAFF_ROLES
from engine.persistence.models import User
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid
from engine.services.paging import counted, paged

LANGUAGES = ("zh_Hant_TW", "en")
EMAIL_MAX = 254
# Deliberately plain (no quoted local parts, no IP literals): an address people type,
# one '@', a dotted domain of letters, digits and hyphens.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$"
)
NOT_AN_ADDRESS = "must be an e-mail address such as name@example.com"
TAKEN = "another user has this address"


def email_problem(value: object) -> str | None:
    """Why `value` is not an address we accept (None: it is one)."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value.strip()) > EMAIL_MAX:
        return f"must be at most {EMAIL_MAX} characters"
    if not _ADDRESS.fullmatch(value.strip()):
        return NOT_AN_ADDRESS
    return None


def normal_email(value: str) -> str:
    """The stored form of an address `email_problem` accepted."""
    return value.strip().lower()


def user_by_email(session: Session, address: str) -> User | None:
    """The user whose address this is (any case), active or not."""
    return session.scalar(select(User).where(func.lower(User.email) == normal_email(address)))


def language_problem(value: object) -> str | None:
    if value not in LANGUAGES:
        return f"must be one of: {', '.join(LANGUAGES)}"
    return None


def check_email_free(session: Session, address: str, user_id: int | None) -> None:
    """409 when another user already has this address."""
    owner = user_by_email(session, address)
    if owner is not None and owner.id != user_id:
        raise Conflict(TAKEN, {"email": TAKEN})


def validate_profile(email: str | None, language: str | None) -> dict[str, str]:
    """Field errors of an optional address ('' clears it) and an optional language."""
    errors: dict[str, str] = {}
    if email:
        problem = email_problem(email)
        if problem:
            errors["email"] = problem
    if language is not None:
        problem = language_problem(language)
        if problem:
            errors["language"] = problem
    return errors


def apply_profile(
    session: Session, user: User, email: str | None, language: str | None
) -> dict[str, Any]:
    """Set the address and language inside the caller's write; the changed fields
    ({field: [old, new]}) for its administration event."""
    changed: dict[str, Any] = {}
    if email is not None:
        wanted = normal_email(email) if email.strip() else None
        if wanted is not None:
            check_email_free(session, wanted, user.id)
        if wanted != user.email:
            changed["email"] = [user.email, wanted]
            user.email = wanted
    if language is not None and language != user.locale:
        changed["language"] = [user.locale, language]
        user.locale = language
    return changed


def update_profile(
    ctx: ServiceContext,
    username: str,
    *,
    email: str | None = None,
    language: str | None = None,
    by: str = admin_events.SYSTEM_ACTOR,
) -> None:
    """An administrator sets a user's address ('' removes it) and language."""
    errors = validate_profile(email, language)
    if errors:
        raise Invalid("invalid user", errors)
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise Invalid("unknown user", {"username": "no such user"})
        changed = apply_profile(session, user, email, language)
        if changed:
            admin_events.record(
                session,
                by,
                admin_events.USER_PROFILE_CHANGED,
                ctx.now(),
                username=username,
                changes=changed,
            )


def profile_of(ctx: ServiceContext, actor: Actor) -> dict[str, Any]:
    """The signed-in user's own contact and preferences."""
    with ctx.db.read() as session:
        user = session.get_one(User, actor.id)
        return {
            "username": user.username,
            "display_name": user.display_name,
            "email": user.email,
            "language": user.locale,
            "timezone": user.timezone,
            "notify_task_ready": user.notify_task_ready,
            "roles": sorted(user.role_names),
        }


def set_notify_task_ready(ctx: ServiceContext, actor: Actor, wanted: bool) -> None:
    """The user's own choice: mail me when a task I could take becomes ready."""
    with ctx.db.write() as session:
        user = session.get_one(User, actor.id)
        user.notify_task_ready = wanted


SEARCH_MIN = 2  # characters: a shorter query would list everyone


def search_callers(ctx: ServiceContext, actor: Actor, args: Mapping[str, object]) -> dict[str, Any]:
    """Active users whose username, display name or address contains `q` (any case),
    paged `{items, total}`: the desk looks up who is calling. Staff only."""
    if not actor.has_any(STAFF_ROLES):
        raise Forbidden("only staff look up callers")
    page, errors = parse_page(args)
    raw = args.get("q")
    query = raw.strip() if isinstance(raw, str) else ""
    if len(query) < SEARCH_MIN:
        errors["q"] = f"must be at least {SEARCH_MIN} characters"
    elif len(query) > 200:
        errors["q"] = "must be at most 200 characters"
    if errors:
        raise Invalid("invalid search", errors)
    # LIKE with the wildcards of the query itself escaped; the users table is small.
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    matches = or_(
        func.lower(User.username).like(pattern, escape="\\"),
        func.lower(User.display_name).like(pattern, escape="\\"),
        func.lower(User.email).like(pattern, escape="\\"),
    )
    condition = and_(User.active.is_(True), matches)
    with ctx.db.read() as session:
        statement = select(User).where(condition)
        total = counted(session, statement)
        rows = session.scalars(paged(statement.order_by(User.username), page))
        items = [
            {"username": u.username, "display_name": u.display_name, "email": u.email} for u in rows
        ]
    return {"items": items, **total.fields()}
