"""What every use case needs: the database, the process runtime, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.domain.roles import LANE_ROLES
from engine.domain.script_helpers import HELPER_NAMES
from engine.persistence.audit_key import audit_key_for, register_audit_key
from engine.persistence.blobs import BlobStore
from engine.persistence.db import Database
from engine.persistence.models import DEFAULT_LOCALE, DEFAULT_TIMEZONE
from engine.services.heavy import HeavyReads
from engine.workflow.runtime import ProcessRuntime


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """The signed-in user a use case acts for."""

    id: int
    username: str
    roles: frozenset[str]
    display_name: str = ""
    locale: str = DEFAULT_LOCALE
    timezone: str = DEFAULT_TIMEZONE
    session_version: int = 0
    # A vendor's organisation: they see only the incidents escalated to it.
    vendor_org: str | None = None

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & roles)


DEFAULT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ChannelSettings:
    """How the desk is heard and hears (contract Part 2, "Command line and settings
    added"); web.settings reads them from the environment, tests pass their own."""

    smtp_url: str = ""  # empty: no mail is queued or sent
    mail_from: str = "itsm@localhost"
    base_url: str = "http://127.0.0.1:5000"  # links in mails
    imap_url: str = ""  # empty: no mailbox is polled
    inbound_authserv_id: str = ""
    inbound_domains: tuple[str, ...] = ()
    webhook_allowed_hosts: tuple[str, ...] = ()
    attachment_dir: Path = Path("instance") / "attachments"
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_url)


_CHANNELS: WeakKeyDictionary[Engine, ChannelSettings] = WeakKeyDictionary()


def channel_settings_of(session: Session) -> ChannelSettings:
    """The channel settings of the context that owns this session's database: what a
    commit hook (engine.services.notify.committed) reads, as it has no context."""
    return _CHANNELS.get(session.get_bind().engine, ChannelSettings())


@dataclass
class ServiceContext:
    db: Database
    runtime: ProcessRuntime = field(default_factory=ProcessRuntime)
    now: Callable[[], datetime] = utc_now
    token_ttl: timedelta = timedelta(hours=12)
    helper_names: frozenset[str] = HELPER_NAMES
    lane_roles: frozenset[str] = LANE_ROLES
    heavy: HeavyReads = field(default_factory=HeavyReads)
    # Signs the audit chains; empty: ITSM_AUDIT_KEY or the installation's key file.
    audit_key: bytes = b""
    channels: ChannelSettings = field(default_factory=ChannelSettings)

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.channels.attachment_dir)

    def __post_init__(self) -> None:
        if not self.audit_key:
            self.audit_key = audit_key_for(self.db.url)
        register_audit_key(self.db.engine, self.audit_key)
        _CHANNELS[self.db.engine] = self.channels
