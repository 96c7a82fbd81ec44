"""Settings read once at start-up; tests pass their own."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from engine.persistence.db import default_sqlite_url

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
