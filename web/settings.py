"""Settings read once at start-up; tests pass their own."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.persistence.db import default_sqlite_url
from engine.services.context import DEFAULT_ATTACHMENT_MAX_BYTES, ChannelSettings
from engine.services.intake.imap_poll import ImapUrlError, parse_imap_url
from engine.services.notify.smtp import SmtpUrlError, parse_smtp_url

INSTANCE_DIR = Path(os.environ.get("ITSM_INSTANCE_DIR", Path.cwd() / "instance"))


@dataclass(frozen=True)
class Settings:
    database_url: str = field(
        default_factory=lambda: (
            os.environ.get("ITSM_DATABASE_URL") or default_sqlite_url(INSTANCE_DIR)
        )
    )
    secret_key: str = field(
        default_factory=lambda: os.environ.get("ITSM_SECRET_KEY") or secrets.token_hex(32)
    )
    secure_cookies: bool = field(
        default_factory=lambda: os.environ.get("ITSM_SECURE_COOKIES", "") == "1"
    )
    token_ttl_hours: float = 12.0
    max_upload_bytes: int = 5 * 1024 * 1024
    channels: ChannelSettings = field(default_factory=lambda: channel_settings_from_env())


class SettingError(ValueError):
    """A setting from the environment is unusable; the message names it."""


def _listed(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name} must be a whole number of bytes, not {raw!r}") from None
    if value < 1:
        raise SettingError(f"{name} must be at least 1")
    return value


def _checked_url(name: str, parse: Callable[[str], object], error: type[ValueError]) -> str:
    """The URL setting as given, refused at start-up (naming it) when it cannot be used,
    rather than at every pass of its loop."""
    url = os.environ.get(name, "").strip()
    if url:
        try:
            parse(url)
        except error as problem:
            text = str(problem)
            raise SettingError(text if text.startswith(name) else f"{name}: {text}") from None
    return url


def channel_settings_from_env() -> ChannelSettings:
    """ITSM_SMTP_URL, ITSM_MAIL_FROM, ITSM_BASE_URL, ITSM_IMAP_URL,
    ITSM_INBOUND_AUTHSERV_ID, ITSM_INBOUND_DOMAINS, ITSM_WEBHOOK_ALLOWED_HOSTS,
    ITSM_ATTACHMENT_DIR, ITSM_ATTACHMENT_MAX_BYTES."""
    defaults = ChannelSettings()
    return ChannelSettings(
        smtp_url=_checked_url("ITSM_SMTP_URL", parse_smtp_url, SmtpUrlError),
        mail_from=os.environ.get("ITSM_MAIL_FROM", "").strip() or defaults.mail_from,
        base_url=(os.environ.get("ITSM_BASE_URL", "").strip() or defaults.base_url).rstrip("/"),
        imap_url=_checked_url("ITSM_IMAP_URL", parse_imap_url, ImapUrlError),
        inbound_authserv_id=os.environ.get("ITSM_INBOUND_AUTHSERV_ID", "").strip(),
        inbound_domains=tuple(d.lower() for d in _listed("ITSM_INBOUND_DOMAINS")),
        webhook_allowed_hosts=tuple(h.lower() for h in _listed("ITSM_WEBHOOK_ALLOWED_HOSTS")),
        attachment_dir=Path(
            os.environ.get("ITSM_ATTACHMENT_DIR", "").strip() or INSTANCE_DIR / "attachments"
        ),
        attachment_max_bytes=_positive_int(
            "ITSM_ATTACHMENT_MAX_BYTES", DEFAULT_ATTACHMENT_MAX_BYTES
        ),
    )
