"""Tables.  Queryable incident fields are columns; the engine state is a blob
in its own table so that lists and inboxes never load it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


DEFAULT_LOCALE = "zh_Hant_TW"
DEFAULT_TIMEZONE = "Asia/Taipei"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("ix_users_email", "email", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locale: Mapped[str] = mapped_column(
        String(20), default=DEFAULT_LOCALE, server_default=DEFAULT_LOCALE
    )
    # Part of every browser session id: bumping it ends all of the user's sessions.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by an administrator's password reset: the user must choose a new one first.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false()
    )
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    timezone: Mapped[str] = mapped_column(
        String(60), default=DEFAULT_TIMEZONE, server_default=DEFAULT_TIMEZONE
    )
    # A vendor's organisation (a `vendor_organisations` name; None for everyone else).
    # A name, not a foreign key: SQLite cannot drop a foreign-key column in place.
    vendor_org: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    # Where mail to the user goes (unique when set; the index is unique).
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    # The user's preference: mail when a task they could take becomes ready.
    notify_task_ready: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    roles: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", back_populates="user"
    )

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(r.role for r in self.roles)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)
    user: Mapped[User] = relationship(back_populates="roles")


class VendorOrganisation(Base):
    """A vendor company: its vendors see only the incidents escalated to it."""

    __tablename__ = "vendor_organisations"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))


# `ACME` and `acme` would be one company to the people choosing between them.
Index(
    "ux_vendor_organisations_folded_name", func.lower(VendorOrganisation.name), unique=True
)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    """A named, revocable key a program (an `integration` user) signs in with.

    Only the key's SHA-256 is stored; `prefix` lets an admin tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class ProcessDefinition(Base):
    __tablename__ = "process_definitions"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    # Large and rarely needed: loaded only on access.
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    deployed_by: Mapped[str] = mapped_column(String(80))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, default="")


class ProcessDraft(Base):
    """A process diagram being edited: saved freely (even with problems), deployed when clean."""

    __tablename__ = "process_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    based_on_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A save based on an older revision is refused (409), never a silent overwrite.
    revision: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": revision}


class PriorityMatrixCell(Base):
    __tablename__ = "priority_matrix"

    impact: Mapped[int] = mapped_column(Integer, primary_key=True)
    urgency: Mapped[int] = mapped_column(Integer, primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)


class SlaPolicy(Base):
    __tablename__ = "sla_policies"

    priority: Mapped[int] = mapped_column(Integer, primary_key=True)
    response_seconds: Mapped[int] = mapped_column(Integer)
    resolution_seconds: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(String(80), default="24x7")
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Per tier: {"level2": {"target_seconds": 21600, "calendar": null}}; null = the policy's.
    stages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status_priority", "status", "priority"),
        Index("ix_incidents_created_by", "created_by_id"),
        Index("ix_incidents_caller", "caller_id"),
        Index("ix_incidents_caller_email", "caller_email"),
        Index("ix_incidents_dedup_key", "dedup_key"),
        Index("ix_incidents_next_timer", "next_timer_at"),
        Index("ix_incidents_resolution_due", "resolution_due"),
        Index("ix_incidents_sla_next_check", "sla_next_check_at"),
        Index("ix_incidents_stage", "stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(300), default="")
    channel: Mapped[str] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    impact: Mapped[int | None] = mapped_column(Integer, nullable=True)
    urgency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))
    status_before_suspend: Mapped[str | None] = mapped_column(String(20), nullable=True)
    suspend_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    suspend_category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    resume_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    phase: Mapped[str] = mapped_column(String(20))
    # The tier(s) holding the incident now (lanes with a ready task, comma-separated;
    # none while resolved): what the stage clocks count.
    stage: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # Who created the record (the actor of `created`; gains nothing else by it).
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Whose incident it is: a user, or an address only (contract Part 2, callers).
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    caller_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    # Part of every signed caller link: bumping it revokes the links of this incident.
    caller_link_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # An integration's key for "the same alert again" while the incident is open.
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A survey answered after the incident closed without one (accepted once).
    survey_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definitions.id"))
    policy_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    suspended_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    suspended_seconds: Mapped[float] = mapped_column(default=0.0)
    breached: Mapped[bool] = mapped_column(Boolean, default=False)
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the SLA worker must next look at this incident (a threshold falls due).
    sla_next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    row_version: Mapped[int] = mapped_column(Integer)

    definition: Mapped[ProcessDefinition] = relationship(lazy="joined", innerjoin=True)
    created_by: Mapped[User] = relationship(
        lazy="joined", innerjoin=True, foreign_keys=[created_by_id]
    )
    caller: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[caller_id])

    __mapper_args__ = {"version_id_col": row_version}


class InstanceState(Base):
    __tablename__ = "instance_states"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    state_json: Mapped[str] = mapped_column(Text)


class UserTaskRow(Base):
    """A user task the engine made ready; kept after it completes or is cancelled,
    so that a second completion is told "already done" (409), not "unknown" (404)."""

    __tablename__ = "user_tasks"
    __table_args__ = (
        Index("ix_user_tasks_state_lane", "state", "lane", "created_at"),
        Index("ix_user_tasks_claimed_by", "claimed_by"),
        Index("ix_user_tasks_incident", "incident_id", "state"),
        Index("ix_user_tasks_vendor_org", "vendor_org", "incident_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(300))
    lane: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))  # ready, completed, cancelled
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # The vendor organisation a vendor-lane task was handed to (None in other lanes).
    vendor_org: Mapped[str | None] = mapped_column(String(80), nullable=True)

    claimant: Mapped[User | None] = relationship(lazy="joined")


class Event(Base):
    """An incident's event; append-only (database triggers refuse UPDATE and DELETE)
    and HMAC-chained per incident (engine.domain.audit).  A batch copy of this
    table in a later SQLite migration would lose the triggers: re-create them."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_incident", "incident_id", "id"),
        Index("ux_events_chain_sequence", "chain", "sequence", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(40), index=True)
    task: Mapped[str | None] = mapped_column(String(200), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chain: Mapped[str] = mapped_column(String(80))
    sequence: Mapped[int] = mapped_column(Integer)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AdminEvent(Base):
    """A change to users, roles, tokens, SLA policies, calendars or process
    definitions, in the `admin` chain; append-only like `events`."""

    __tablename__ = "admin_events"
    __table_args__ = (Index("ux_admin_events_chain_sequence", "chain", "sequence", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chain: Mapped[str] = mapped_column(String(80))
    sequence: Mapped[int] = mapped_column(Integer)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The newest link of each audit chain: appending locks this row, so two
    transactions never both extend the same link."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(80), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    author: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    # Visible to staff and the vendor organisation(s) of the incident, never the caller.
    vendor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    # The integration user that posted a note on the caller's behalf.
    via: Mapped[str | None] = mapped_column(String(80), nullable=True)


class LinkedRecord(Base):
    __tablename__ = "linked_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    number: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="open")
    creator: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlaAnnouncement(Base):
    """A threshold announced for a clock: the primary key makes it happen once."""

    __tablename__ = "sla_announcements"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    clock: Mapped[str] = mapped_column(String(40), primary_key=True)
    percent: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlaPolicyVersion(Base):
    """Every version of a priority's SLA targets; `sla_policies` holds the current one."""

    __tablename__ = "sla_policy_versions"
    __table_args__ = (UniqueConstraint("priority", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    response_seconds: Mapped[int] = mapped_column(Integer)
    resolution_seconds: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(String(80))
    stages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed_by: Mapped[str] = mapped_column(String(80))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, default="")


class BusinessCalendar(Base):
    """A named working-time calendar an SLA policy may count in (`24x7` is one too)."""

    __tablename__ = "business_calendars"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(60))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerHeartbeat(Base):
    """A timer worker's sign of life, rewritten every few seconds: /healthz reads it,
    so a worker in another process (`itsm worker`) or on another host is seen too."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(255), primary_key=True)  # host:pid:n
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # How often this worker promises to beat; it is stale after three times that.
    beat_every_seconds: Mapped[int] = mapped_column(Integer)


class Attachment(Base):
    """A file on an incident: the bytes live in the blob store under their SHA-256."""

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_incident", "incident_id", "id"),
        Index("ix_attachments_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(120))
    sha256: Mapped[str] = mapped_column(String(64))
    internal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    vendor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    uploaded_by: Mapped[str] = mapped_column(String(254))  # a username or an address
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    inbound_mail_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Notification(Base):
    """A mail in the outbox: written in the transaction of the event that causes it,
    sent by the worker.  `status`: queued, sent or failed."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_incident", "incident_id", "id"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), nullable=True)
    event: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    to_address: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(60))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    subject: Mapped[str] = mapped_column(String(400))
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundMail(Base):
    """A message received (API or IMAP) and what became of it; the raw message is
    kept in the blob store under `sha256`."""

    __tablename__ = "inbound_mails"
    __table_args__ = (
        Index("ix_inbound_mails_message_id", "message_id"),
        Index("ix_inbound_mails_sender", "from_address", "received_at"),
        Index("ix_inbound_mails_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    from_address: Mapped[str | None] = mapped_column(String(254), nullable=True)
    subject: Mapped[str] = mapped_column(String(400), default="", server_default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(10))  # api, imap
    action: Mapped[str] = mapped_column(String(10))  # created, noted, ignored
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Signs each delivery; never returned by the API.
    secret: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Deleted webhooks stay for their delivery log; nothing more is sent to them.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookDelivery(Base):
    """One event for one webhook: written in the event's transaction, POSTed by the
    worker.  `status`: queued, delivered or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_hook", "webhook_id", "id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), nullable=True)
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the body exactly as signed and sent
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
