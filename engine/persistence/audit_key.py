"""The key the audit chains are signed with, kept outside the database.

Production sets ITSM_AUDIT_KEY.  Without it, each installation gets a random
key in a file beside its SQLite database (or, for another database, in the
instance folder: ITSM_INSTANCE_DIR, default ./instance), created on first use
with mode 0600 — so that the one-command run needs no setup.  The migrations
read the key the same way as the app, which is why this lives here.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

AUDIT_KEY_ENV = "ITSM_AUDIT_KEY"
KEY_FILE_NAME = "audit.key"
# 32 characters: 128 bits at the least even as hex; the generated key has 256.
MIN_KEY_LENGTH = 32


class AuditKeyError(RuntimeError):
    """The key is configured but unusable; the message names where."""


def key_file_for(database_url: str | URL) -> Path:
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        return Path(database).parent / KEY_FILE_NAME
    instance_dir = os.environ.get("ITSM_INSTANCE_DIR") or str(Path.cwd() / "instance")
    return Path(instance_dir) / KEY_FILE_NAME


def audit_key_for(database_url: str | URL) -> bytes:
    configured = os.environ.get(AUDIT_KEY_ENV)
    if configured is not None:
        return _checked(configured, AUDIT_KEY_ENV)
    return _read_or_create(key_file_for(database_url))


def _checked(text: str, where: str) -> bytes:
    key = text.strip()
    if len(key) < MIN_KEY_LENGTH:
        raise AuditKeyError(f"{where}: the audit key must be at least {MIN_KEY_LENGTH} characters")
    return key.encode("utf-8")


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        _create(path)
    try:
        return _checked(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as error:
        raise AuditKeyError(f"{path}: cannot read the audit key ({error})") from error


def _create(path: Path) -> None:
    """Write a new key where no other process can see it half-written.

    The key goes to a private temporary file first and is then hard-linked to
    its name: of two processes starting at once, one link wins and both read
    the winner's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_hex(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)


# The key each database engine's events are signed with. Sessions are opened in
# many places that know only their session; the engine it is bound to names the
# installation, and the ServiceContext registers its key here when it is made.
_keys_by_engine: WeakKeyDictionary[Engine, bytes] = WeakKeyDictionary()


def register_audit_key(engine: Engine, key: bytes) -> None:
    _keys_by_engine[engine] = key


def audit_key_of(engine: Engine) -> bytes:
    key = _keys_by_engine.get(engine)
    if key is None:
        key = _keys_by_engine.setdefault(engine, audit_key_for(engine.url))
    return key
