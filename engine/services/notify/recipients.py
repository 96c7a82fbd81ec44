"""Who is told about an incident (contract Part 2, "Notifications: e-mail out").

Everything here runs inside the committing transaction (the outbox producer), so
each lookup is one query at most.  A role's members are also remembered by this
process for MEMBERS_FOR seconds, and forgotten at once when this process writes a
user or a role: another process's change (an admin in `itsm serve` while the
worker sends) is seen within MEMBERS_FOR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import chain
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, UOWTransaction

from engine.domain.roles import STAFF_ROLES
from engine.persistence.models import DEFAULT_LOCALE, Incident, User, UserRole, UserTaskRow
from engine.services.context import Actor
from engine.services.incidents import visibility
from engine.services.incidents.vendors import VENDOR_LANE

LANGUAGES = ("zh_Hant_TW", "en")
INCIDENT_MANAGER = "incident_manager"
DIRECTOR = "director"


@dataclass(frozen=True)
class Recipient:
    address: str
    language: str
    user_id: int | None = None
    username: str | None = None  # None: a caller known only by address


def language_of(user: User) -> str:
    return user.locale if user.locale in LANGUAGES else DEFAULT_LOCALE


def recipient_of(user: User) -> Recipient | None:
    if not user.email or not user.active:
        return None
    return Recipient(user.email, language_of(user), user.id, user.username)


@dataclass(frozen=True)
class Member:
    """A user of one role, read as plain columns (no ORM objects: this is a hot path)."""

    id: int
    username: str
    email: str
    locale: str
    notify_task_ready: bool
    vendor_org: str | None
    role: str

    def recipient(self) -> Recipient:
        language = self.locale if self.locale in LANGUAGES else DEFAULT_LOCALE
        return Recipient(self.email, language, self.id, self.username)


MEMBERS_FOR = 5.0  # seconds
_members: WeakKeyDictionary[Engine, dict[str, tuple[float, list[Member]]]] = WeakKeyDictionary()


@event.listens_for(Session, "after_flush")
def _forget_members(session: Session, _flush: UOWTransaction) -> None:
    if _members and any(
        isinstance(row, User | UserRole)
        for row in chain(session.new, session.dirty, session.deleted)
    ):
        _members.clear()


class Directory:
    """The users a transaction's mails go to, read once per role."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._by_role = _members.setdefault(session.get_bind().engine, {})

    def members(self, role: str) -> list[Member]:
        """Active users of `role` with an address (muted ones too: callers decide)."""
        now = time.monotonic()
        remembered = self._by_role.get(role)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        rows = self.session.execute(
            select(
                User.id,
                User.username,
                User.email,
                User.locale,
                User.notify_task_ready,
                User.vendor_org,
            )
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == role, User.active, User.email.is_not(None))
            .order_by(User.id)
        )
        found = [
            Member(id_, username, email or "", locale, bool(wants), org, role)
            for id_, username, email, locale, wants, org in rows
        ]
        self._by_role[role] = (now + MEMBERS_FOR, found)
        return found

    def may_see(
        self,
        incident: Incident,
        user_id: int,
        roles: frozenset[str],
        vendor_org: str | None,
        username: str,
    ) -> bool:
        """The one visibility rule (engine.services.incidents.visibility); staff and the
        caller are answered without a query."""
        if roles & STAFF_ROLES or incident.caller_id == user_id:
            return True
        actor = Actor(id=user_id, username=username, roles=roles, vendor_org=vendor_org)
        return visibility.can_see(self.session, actor, incident)

    def users(self, users: list[User], incident: Incident) -> list[Recipient]:
        chosen = []
        for user in users:
            recipient = recipient_of(user)
            if recipient is not None and self.may_see(
                incident, user.id, user.role_names, user.vendor_org, user.username
            ):
                chosen.append(recipient)
        return chosen

    def people(self, members: list[Member], incident: Incident) -> list[Recipient]:
        return [
            member.recipient()
            for member in members
            if self.may_see(
                incident, member.id, frozenset({member.role}), member.vendor_org, member.username
            )
        ]

    def lane(self, task: UserTaskRow, incident: Incident, *, muted_too: bool) -> list[Recipient]:
        """A task's lane: its members who may see the incident; in the vendor lane only
        the task's organisation.  `muted_too`: also those who turned task mails off."""
        if task.lane == "reporter":
            caller = caller_recipient(incident)
            return [caller] if caller is not None else []
        members = [
            member
            for member in self.members(task.lane)
            if (muted_too or member.notify_task_ready)
            and (task.lane != VENDOR_LANE or member.vendor_org == task.vendor_org)
        ]
        return self.people(members, incident)

    def task_people(
        self, task: UserTaskRow, incident: Incident, *, muted_too: bool
    ) -> list[Recipient]:
        """A task's assignee if it has one, else its lane (`muted_too` as for `lane`)."""
        if task.claimed_by is not None:
            user = task.claimant or self.session.get(User, task.claimed_by)
            if user is None or not (muted_too or user.notify_task_ready):
                return []
            return self.users([user], incident)
        return self.lane(task, incident, muted_too=muted_too)

    def open_tasks(self, incident: Incident) -> list[UserTaskRow]:
        return list(
            self.session.scalars(
                select(UserTaskRow)
                .where(UserTaskRow.incident_id == incident.id, UserTaskRow.state == "ready")
                .order_by(UserTaskRow.created_at, UserTaskRow.id)
            )
        )

    def by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))


def caller_recipient(incident: Incident) -> Recipient | None:
    """The caller: their user's address, else the address they are known by."""
    if incident.caller is not None:
        return recipient_of(incident.caller)
    if incident.caller_email:
        return Recipient(incident.caller_email, DEFAULT_LOCALE)
    return None
