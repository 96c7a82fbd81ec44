"""`itsm backup FILE`: the backup file and what goes into it (`restore` reads it back).

A backup is a zip archive (every member carries a CRC, and the manifest a SHA-256
of each, so a damaged or truncated file is found before anything is restored):

- `manifest.json`: the format and its version, the itsm version, when, the kind
  of database and the method, the schema revision (Alembic), every table's row
  count, and the size and SHA-256 of every other member;
- the rows (`engine.persistence.backup` says how each is taken):
  `database.sqlite` (method `sqlite`), `database.pgdump` (method `pg_dump`) or
  `rows/TABLE.jsonl` (method `json-lines`, PostgreSQL without pg_dump);
- `blobs/SHA256`: the attachments and raw inbound mails the rows name, from the blob
  store (`engine.persistence.backup_blobs`), written back into it on restore;
- `attachments/...`: any other files under ITSM_ATTACHMENT_DIR, when set and present.

It is written beside FILE (owner-only: it holds password hashes) and renamed
over FILE when complete, so FILE is never half a backup. A restore checks all
of it, the revision, and that the database is empty before it changes anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from engine.persistence import backup as db_backup
from engine.persistence import backup_blobs
from engine.persistence.backup import DatabaseCopyError
from engine.persistence.blobs import BlobStore
from engine.services.context import ServiceContext
from engine.services.errors import Invalid

FORMAT = "itsm-backup"
# 2: `blobs/` members (version 1 readers would silently leave them out).
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite"
PG_DUMP_MEMBER = "database.pgdump"
ROWS_PREFIX = "rows/"
ATTACHMENTS_PREFIX = "attachments/"
# Each method and the kind of database it restores into.
METHODS = {"sqlite": "sqlite", "pg_dump": "postgresql", "json-lines": "postgresql"}
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
# What zipfile and zlib raise on a damaged archive, besides OSError.
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, struct.error, NotImplementedError)


@dataclass(frozen=True)
class BackupSummary:
    database: str
    method: str
    revision: str
    tables: dict[str, int]
    attachments: int
    size: int
    blobs: int = 0
    # Digests the rows name that the blob store did not have.
    missing_blobs: tuple[str, ...] = ()


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _itsm_version() -> str:
    try:
        return metadata.version("itsm-incident")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- backup ------------------------------------------------------------------------


class _Member:
    """An archive member being written, hashed on the way."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        self.stream.write(data)


@contextmanager
def _member(
    archive: zipfile.ZipFile,
    name: str,
    members: dict[str, dict[str, Any]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> Iterator[_Member]:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = compression
    info.external_attr = 0o600 << 16
    with archive.open(info, "w", force_zip64=True) as stream:
        member = _Member(stream)
        yield member
    members[name] = {"size": member.size, "sha256": member.sha256.hexdigest()}


def _add_file(
    archive: zipfile.ZipFile,
    name: str,
    path: Path,
    members: dict[str, dict[str, Any]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> int:
    with path.open("rb") as source, _member(archive, name, members, compression) as member:
        while chunk := source.read(CHUNK_BYTES):
            member.write(chunk)
    return member.size


def _write_database(
    ctx: ServiceContext, archive: zipfile.ZipFile, work: Path, members: dict[str, dict[str, Any]]
) -> tuple[str, db_backup.Snapshot]:
    engine = ctx.db.engine
    if engine.dialect.name == "sqlite":
        copy = work / SQLITE_MEMBER
        snapshot = db_backup.sqlite_snapshot(ctx.db.url, copy)
        _add_file(archive, SQLITE_MEMBER, copy, members)
        return "sqlite", snapshot
    pg_dump = shutil.which("pg_dump")
    with db_backup.pg_snapshot(engine) as pg:
        if pg_dump:
            dump = work / PG_DUMP_MEMBER
            db_backup.run_pg_dump(pg_dump, ctx.db.url, pg, dump)
            # Compressed already.
            _add_file(archive, PG_DUMP_MEMBER, dump, members, zipfile.ZIP_STORED)
            return "pg_dump", pg
        for table in pg.tables:
            with _member(archive, f"{ROWS_PREFIX}{table.name}.jsonl", members) as member:
                for line in db_backup.table_lines(pg.connection, table):
                    member.write(line.encode("utf-8"))
        return "json-lines", pg


def _write_attachments(
    archive: zipfile.ZipFile, directory: Path | None, members: dict[str, dict[str, Any]]
) -> tuple[int, int]:
    if directory is None or not directory.is_dir():
        return 0, 0
    files = total = 0
    for root, dirs, names in os.walk(directory):  # symbolic links are not followed
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(directory).as_posix()
            if backup_blobs.is_store_file(PurePosixPath(relative)):
                continue  # carried as blobs/, by digest
            total += _add_file(archive, ATTACHMENTS_PREFIX + relative, path, members)
            files += 1
    return files, total


def _write_blobs(
    ctx: ServiceContext,
    archive: zipfile.ZipFile,
    store: BlobStore,
    members: dict[str, dict[str, Any]],
) -> tuple[int, int, tuple[str, ...]]:
    """The files the rows name (read after the database snapshot: module docstring of
    backup_blobs); returns how many, their bytes, and the digests the store lacks."""
    with ctx.db.engine.connect() as connection:
        found, missing = backup_blobs.files_to_carry(connection, store)
    total = sum(
        _add_file(archive, backup_blobs.member_name(digest), path, members)
        for digest, path in found
    )
    return len(found), total, missing


def blob_store(ctx: ServiceContext, attachment_dir: Path | None) -> BlobStore:
    return BlobStore(attachment_dir) if attachment_dir is not None else ctx.blobs


def create_backup(
    ctx: ServiceContext, destination: Path, attachment_dir: Path | None
) -> BackupSummary:
    database = shown_url(ctx.db.url)
    kind = ctx.db.engine.dialect.name
    if kind not in ("sqlite", "postgresql"):
        raise Invalid(f"{database}: a {kind} database cannot be backed up", {})
    partial = destination.with_name(f".{destination.name}.partial")
    members: dict[str, dict[str, Any]] = {}
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with (
            os.fdopen(descriptor, "wb") as file,
            tempfile.TemporaryDirectory(dir=destination.parent, prefix=".itsm-backup-") as work,
        ):
            with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                method, snapshot = _write_database(ctx, archive, Path(work), members)
                if snapshot.revision is None:
                    raise Invalid(f"{database}: no schema revision: itsm never migrated it", {})
                # After the database: a file is stored before the row that names it
                # commits, so every attachment the rows name is here.
                files, total = _write_attachments(archive, attachment_dir, members)
                blobs = _write_blobs(ctx, archive, blob_store(ctx, attachment_dir), members)
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "itsm_version": _itsm_version(),
                    "created_at": ctx.now().astimezone(UTC).isoformat(),
                    "database": kind,
                    "method": method,
                    "schema_revision": snapshot.revision,
                    "tables": snapshot.counts,
                    "attachments": {"files": files, "bytes": total},
                    "blobs": {"files": blobs[0], "bytes": blobs[1], "missing": list(blobs[2])},
                    "members": members,
                }
                archive.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, destination)
    except DatabaseCopyError as exc:
        raise Invalid(f"{destination}: backup of {database} failed: {exc}", {}) from exc
    except SQLAlchemyError as exc:
        raise Invalid(f"{destination}: backup of {database} failed: {first_line(exc)}", {}) from exc
    except OSError as exc:
        where = destination if exc.filename in (None, str(partial)) else exc.filename
        raise Invalid(f"{where}: cannot write ({exc.strerror})", {}) from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupSummary(
        database,
        method,
        snapshot.revision,
        snapshot.counts,
        files,
        destination.stat().st_size,
        blobs=blobs[0],
        missing_blobs=blobs[2],
    )


def first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
