"""What every use case needs: the database, the process runtime, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.domain.roles import LANE_ROLES
from engine.domain.script_helpers import HELPER_NAMES
from engine.persistence.audit_key import audit_key_for, register_audit_key
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

    def __post_init__(self) -> None:
        if not self.audit_key:
            self.audit_key = audit_key_for(self.db.url)
        register_audit_key(self.db.engine, self.audit_key)
