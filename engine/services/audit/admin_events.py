"""Administration events: who changed users, roles, tokens, SLA policies,
calendars or process definitions, and what changed — in the `admin` chain,
written in the transaction of the change itself.  Never a secret: passwords,
hashes and tokens are left out; the data says what happened to whom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.audit import ADMIN_CHAIN
from engine.persistence.models import AdminEvent, AuditChainHead
from engine.services.audit import chains
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden

USER_CREATED = "user_created"
USER_ROLES_CHANGED = "user_roles_changed"
USER_ACTIVATED = "user_activated"
USER_DEACTIVATED = "user_deactivated"
USER_PROFILE_CHANGED = "user_profile_changed"
PASSWORD_RESET = "password_reset"
PASSWORD_CHANGED = "password_changed"
TOKEN_ISSUED = "token_issued"
TOKENS_REVOKED = "tokens_revoked"
API_KEY_ISSUED = "api_key_issued"
API_KEY_REVOKED = "api_key_revoked"
VENDOR_ORG_CREATED = "vendor_org_created"
VENDOR_ORG_CHANGED = "vendor_org_changed"
SLA_POLICY_CHANGED = "sla_policy_changed"
CALENDAR_CREATED = "calendar_created"
CALENDAR_CHANGED = "calendar_changed"
CALENDAR_DELETED = "calendar_deleted"
PROCESS_DEPLOYED = "process_deployed"
DRAFT_CREATED = "draft_created"
DRAFT_SAVED = "draft_saved"
DRAFT_DELETED = "draft_deleted"
DRAFT_DEPLOYED = "draft_deployed"
ATTACHMENT_UPLOADED = "attachment_uploaded"
WEBHOOK_CREATED = "webhook_created"
WEBHOOK_DELETED = "webhook_deleted"

ADMIN_EVENT_TYPES = frozenset(
    {
        USER_CREATED,
        USER_ROLES_CHANGED,
        USER_ACTIVATED,
        USER_DEACTIVATED,
        USER_PROFILE_CHANGED,
        PASSWORD_RESET,
        PASSWORD_CHANGED,
        TOKEN_ISSUED,
        TOKENS_REVOKED,
        API_KEY_ISSUED,
        API_KEY_REVOKED,
        VENDOR_ORG_CREATED,
        VENDOR_ORG_CHANGED,
        SLA_POLICY_CHANGED,
        CALENDAR_CREATED,
        CALENDAR_CHANGED,
        CALENDAR_DELETED,
        PROCESS_DEPLOYED,
        DRAFT_CREATED,
        DRAFT_SAVED,
        DRAFT_DELETED,
        DRAFT_DEPLOYED,
        ATTACHMENT_UPLOADED,
        WEBHOOK_CREATED,
        WEBHOOK_DELETED,
    }
)
# The actor of a change made where nobody is signed in: the command line, setup.
SYSTEM_ACTOR = "system"


def record(session: Session, actor: str, type_: str, at: datetime, **data: Any) -> None:
    """Add an administration event to the caller's transaction."""
    if type_ not in ADMIN_EVENT_TYPES:
        raise ValueError(f"unknown administration event type {type_!r}")
    chains.stage(session, AdminEvent(chain=ADMIN_CHAIN, at=at, actor=actor, type=type_, data=data))


def require_auditor(actor: Actor) -> None:
    if "admin" not in actor.roles:
        raise Forbidden("only an administrator reads the administration events")


@dataclass(frozen=True)
class AdminEventPage:
    items: list[dict[str, Any]]
    # Exact: the admin chain's head counts its events, so no rows are counted.
    total: int


def admin_event_page(
    ctx: ServiceContext, actor: Actor, *, limit: int, offset: int
) -> AdminEventPage:
    """Newest first."""
    require_auditor(actor)
    with ctx.db.read() as session:
        rows = session.scalars(
            select(AdminEvent)
            .where(AdminEvent.chain == ADMIN_CHAIN)
            .order_by(AdminEvent.sequence.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        head = session.get(AuditChainHead, ADMIN_CHAIN)
        return AdminEventPage(
            items=[
                {
                    "id": row.id,
                    "sequence": row.sequence,
                    "at": row.at.isoformat(),
                    "actor": row.actor,
                    "type": row.type,
                    "data": row.data,
                }
                for row in rows
            ],
            total=head.sequence if head is not None else 0,
        )
