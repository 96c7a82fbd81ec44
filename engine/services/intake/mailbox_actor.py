"""Who the IMAP poller acts as: the built-in integration user `mail-in`.

A message fetched from the mailbox has no bearer behind it, yet the incident it
becomes needs a creating user (`Incident.created_by_id`) and its notes a `via`.
The poller creates `mail-in` the first time it needs it: role `integration`,
inactive (it never signs in; its password is random and never shown), with the
administration event `user_created` by `system`.  Mail posted to the endpoint
acts as the integration user whose API key or token sent it instead.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.domain.roles import INTEGRATION
from engine.persistence.models import User, UserRole
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.people.users import actor_of, hash_password

MAILBOX_USERNAME = "mail-in"
MAILBOX_DISPLAY_NAME = "Mail in (IMAP)"


class MailboxUserUnusable(RuntimeError):
    """A user named `mail-in` exists but is not an integration user."""


def mailbox_actor(ctx: ServiceContext) -> Actor:
    with ctx.db.read() as session:
        found = _existing(session)
        if found is not None:
            return found
    password_hash = hash_password(secrets.token_urlsafe(32))  # slow: outside the write
    try:
        with ctx.db.write() as session:
            now = ctx.now()
            user = User(
                username=MAILBOX_USERNAME,
                password_hash=password_hash,
                password_changed_at=now,
                display_name=MAILBOX_DISPLAY_NAME,
                active=False,
                created_at=now,
                roles=[UserRole(role=INTEGRATION)],
            )
            session.add(user)
            session.flush()
            admin_events.record(
                session,
                admin_events.SYSTEM_ACTOR,
                admin_events.USER_CREATED,
                now,
                username=MAILBOX_USERNAME,
                display_name=MAILBOX_DISPLAY_NAME,
                roles=[INTEGRATION],
            )
            return actor_of(user)
    except IntegrityError:  # another poller created it at the same moment
        with ctx.db.read() as session:
            found = _existing(session)
            if found is None:
                raise
            return found


def _existing(session: Session) -> Actor | None:
    user = session.scalar(select(User).where(User.username == MAILBOX_USERNAME))
    if user is None:
        return None
    if INTEGRATION not in user.role_names:
        raise MailboxUserUnusable(
            f"the user {MAILBOX_USERNAME!r} exists without the integration role: "
            "give it the role or rename it, the IMAP poller acts as that user"
        )
    return actor_of(user)
