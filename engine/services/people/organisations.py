"""Vendor organisations: every vendor user belongs to one (contract Part 2, "People").

An organisation is only a name here; what it means for who sees an incident is
the incidents area's business (`incidents/visibility`, `incidents/vendors`).
Names are ASCII identifiers so that SQLite, PostgreSQL and Python agree on
their lower case: `ACME` and `acme` are one organisation, and a lookup by
either finds it under the spelling it was created with.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.persistence.models import User, UserRole, VendorOrganisation
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid

audit = logging.getLogger("itsm.audit")

DEFAULT_ORGANISATION = "default"
VENDOR_ROLE = "vendor"
NAME_MAX = 80  # the column's length
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = "must be 1-80 letters (A-Z), digits, '.', '_' or '-', starting with a letter or digit"
UNKNOWN = "is not a vendor organisation"
NOT_A_VENDOR = "only a vendor user belongs to a vendor organisation"
# Who is recorded as creating an organisation nobody asked for by name (`default`).
SYSTEM = "system"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name an organisation, or None."""
    if len(name) > NAME_MAX or not _NAME.fullmatch(name):
        return NAME_RULE
    return None


def find(session: Session, name: str) -> str | None:
    """The organisation's name as it was created, whatever the case of `name`."""
    if name_problem(name) is not None:
        return None
    return session.scalar(
        select(VendorOrganisation.name).where(func.lower(VendorOrganisation.name) == name.lower())
    )


def names(session: Session, *, limit: int) -> list[str]:
    """The first `limit` organisation names, alphabetically."""
    return list(
        session.scalars(
            select(VendorOrganisation.name)
            .order_by(func.lower(VendorOrganisation.name))
            .limit(limit)
        )
    )


def only_organisation(session: Session) -> str | None:
    """The organisation's name when exactly one exists (then it is implied)."""
    names = session.scalars(select(VendorOrganisation.name).limit(2)).all()
    return names[0] if len(names) == 1 else None


def _create(session: Session, name: str, by: str, now: datetime) -> str:
    session.add(VendorOrganisation(name=name, created_at=now, created_by=by))
    session.flush()
    audit.info("vendor organisation %s created by %s", name, by)
    admin_events.record(session, by, admin_events.VENDOR_ORG_CREATED, now, name=name)
    return name


def resolve(
    session: Session, name: str | None, now: datetime, *, create_as: str | None = None
) -> str:
    """The organisation a vendor joins: `name`, else `default`. An unknown name is
    refused (field `org`) unless `create_as` says who creates it; `default` is
    created when missing."""
    wanted = name or DEFAULT_ORGANISATION
    problem = name_problem(wanted)
    if problem is not None:
        raise Invalid("invalid vendor organisation", {"org": problem})
    found = find(session, wanted)
    if found is not None:
        return found
    if name is None:
        return _create(session, DEFAULT_ORGANISATION, SYSTEM, now)
    if create_as is None:
        raise Invalid("unknown vendor organisation", {"org": UNKNOWN})
    return _create(session, wanted, create_as, now)


def follow_roles(session: Session, user: User, now: datetime) -> None:
    """Keep `user.vendor_org` in step with the vendor role: a new vendor joins
    `default`, and someone who is no longer a vendor belongs to no organisation."""
    if VENDOR_ROLE not in user.role_names:
        user.vendor_org = None
    elif user.vendor_org is None:
        user.vendor_org = resolve(session, None, now)


def list_organisations(ctx: ServiceContext) -> list[dict[str, Any]]:
    """Every organisation with its number of vendor users, by name."""
    with ctx.db.read() as session:
        rows = session.execute(
            select(User.vendor_org, func.count(User.id))
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == VENDOR_ROLE, User.vendor_org.is_not(None))
            .group_by(User.vendor_org)
        )
        members = {org: int(count) for org, count in rows}
        return [
            {
                "name": org.name,
                "vendors": members.get(org.name, 0),
                "created_at": org.created_at,
                "created_by": org.created_by,
            }
            for org in session.scalars(
                select(VendorOrganisation).order_by(func.lower(VendorOrganisation.name))
            )
        ]


def vendor_orgs_by_username(ctx: ServiceContext) -> dict[str, str]:
    """Each vendor user's organisation."""
    with ctx.db.read() as session:
        rows = session.execute(
            select(User.username, User.vendor_org).where(User.vendor_org.is_not(None))
        )
        return {username: org for username, org in rows if org is not None}


def create_organisation(ctx: ServiceContext, by: Actor, name: str) -> str:
    if "admin" not in by.roles:
        raise Forbidden("only an administrator creates vendor organisations")
    problem = name_problem(name)
    if problem is not None:
        raise Invalid("invalid vendor organisation", {"name": problem})
    try:
        with ctx.db.write() as session:
            existing = find(session, name)
            if existing is not None:
                raise Conflict(f"vendor organisation {existing!r} already exists")
            return _create(session, name, by.username, ctx.now())
    except IntegrityError as exc:
        # Two administrators creating the same name at once: the unique index decides.
        raise Conflict(f"vendor organisation {name!r} already exists") from exc


def set_vendor_org(ctx: ServiceContext, by: Actor, username: str, name: str) -> str:
    """Move a vendor user to another organisation (an existing one). From then on they
    see only the incidents escalated to it; their signed-in sessions follow at once
    (the actor is read on every request)."""
    if "admin" not in by.roles:
        raise Forbidden("only an administrator changes a vendor's organisation")
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise Invalid("unknown user", {"username": "no such user"})
        if VENDOR_ROLE not in user.role_names:
            raise Invalid("not a vendor", {"org": NOT_A_VENDOR})
        found = find(session, name) if name else None
        if found is None:
            raise Invalid("unknown vendor organisation", {"org": name_problem(name) or UNKNOWN})
        if user.vendor_org != found:
            audit.info(
                "vendor %s moved from organisation %s to %s by %s",
                username,
                user.vendor_org,
                found,
                by.username,
            )
            admin_events.record(
                session,
                by.username,
                admin_events.VENDOR_ORG_CHANGED,
                ctx.now(),
                username=username,
                before=user.vendor_org,
                after=found,
            )
            user.vendor_org = found
        return found
