"""`itsm backup FILE` and `itsm restore FILE`: the backup file and what goes into it.

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
from engine.persistence.migrate import migrate
from engine.services.context import ServiceContext
from engine.services.errors import Conflict, Invalid

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


@dataclass(frozen=True)
class RestoreSummary:
    database: str
    method: str
    revision: str
    tables: dict[str, int]
    attachments: int
    head: str
    blobs: int = 0


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


def _blob_store(ctx: ServiceContext, attachment_dir: Path | None) -> BlobStore:
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
                blobs = _write_blobs(ctx, archive, _blob_store(ctx, attachment_dir), members)
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
        raise Invalid(
            f"{destination}: backup of {database} failed: {_first_line(exc)}", {}
        ) from exc
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


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


# -- reading a backup --------------------------------------------------------------


@contextmanager
def _open_archive(source: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(source)
    except OSError as exc:
        raise Invalid(f"{source}: cannot read ({exc.strerror or exc})", {}) from exc
    except DAMAGED as exc:
        raise Invalid(f"{source}: not an itsm backup (truncated or damaged: {exc})", {}) from exc
    with archive:
        yield archive


def _manifest(source: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    names = archive.namelist()
    if MANIFEST not in names:
        raise Invalid(f"{source}: not an itsm backup (no {MANIFEST})", {})
    if len(set(names)) != len(names):
        raise Invalid(f"{source}: damaged (a member name appears twice)", {})
    if archive.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
        raise Invalid(f"{source}: {MANIFEST}: larger than {MAX_MANIFEST_BYTES} bytes", {})
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except json.JSONDecodeError as exc:
        raise Invalid(f"{source}: {MANIFEST} line {exc.lineno}: {exc.msg}", {}) from exc
    except (*DAMAGED, UnicodeDecodeError) as exc:
        raise Invalid(f"{source}: {MANIFEST}: damaged ({exc})", {}) from exc
    problem = _manifest_problem(manifest)
    if problem:
        raise Invalid(f"{source}: {MANIFEST}: {problem}", {})
    unlisted = sorted(set(names) - set(manifest["members"]) - {MANIFEST})
    if unlisted:
        raise Invalid(f"{source}: member {unlisted[0]} is not in {MANIFEST}", {})
    return manifest  # type: ignore[no-any-return]


def _manifest_problem(manifest: Any) -> str | None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"not an itsm backup (format is not {FORMAT!r})"
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        return "format_version: must be a positive whole number"
    if version > FORMAT_VERSION:
        return (
            f"format version {version} is newer than this version of itsm reads "
            f"({FORMAT_VERSION}); restore with itsm {manifest.get('itsm_version', '?')}"
        )
    if manifest.get("method") not in METHODS:
        return f"method: must be one of {', '.join(METHODS)}"
    if not isinstance(manifest.get("schema_revision"), str):
        return "schema_revision: missing"
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or not all(
        isinstance(n, int) and n >= 0 for n in tables.values()
    ):
        return "tables: must map each table to its row count"
    members = manifest.get("members")
    if not isinstance(members, dict) or not all(
        isinstance(m, dict) and isinstance(m.get("size"), int) and isinstance(m.get("sha256"), str)
        for m in members.values()
    ):
        return "members: must map each member to its size and sha256"
    return None


def _check_member(
    source: Path,
    archive: zipfile.ZipFile,
    name: str,
    expected: dict[str, Any],
    copy_to: Path | None = None,
) -> None:
    """Read the member through (its CRC is checked at the end) and compare its checksum."""
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(name) as stream, (copy_to or Path(os.devnull)).open("wb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except KeyError:
        raise Invalid(f"{source}: member {name} is missing (truncated?)", {}) from None
    except DAMAGED as exc:
        raise Invalid(f"{source}: member {name}: damaged ({exc})", {}) from exc
    if size != expected["size"] or digest.hexdigest() != expected["sha256"]:
        raise Invalid(f"{source}: member {name}: damaged (its checksum differs)", {})


def _attachment_targets(source: Path, names: list[str], directory: Path | None) -> dict[str, Path]:
    if not names:
        return {}
    if directory is None:
        raise Invalid(
            f"{source} holds {len(names)} attachment files: set ITSM_ATTACHMENT_DIR "
            "to the directory to restore them into",
            {},
        )
    targets = {}
    for name in names:
        relative = PurePosixPath(name[len(ATTACHMENTS_PREFIX) :])
        if relative.is_absolute() or not relative.parts or ".." in relative.parts:
            raise Invalid(f"{source}: member {name}: not a path inside the attachment folder", {})
        target = directory.joinpath(*relative.parts)
        if target.exists():
            raise Conflict(f"{target} exists: attachments are restored into an empty folder")
        targets[name] = target
    return targets


# -- restore -----------------------------------------------------------------------


def restore_backup(
    ctx: ServiceContext, source: Path, attachment_dir: Path | None
) -> RestoreSummary:
    engine = ctx.db.engine
    database = shown_url(ctx.db.url)
    with _open_archive(source) as archive, tempfile.TemporaryDirectory(prefix="itsm-") as work:
        manifest = _manifest(source, archive)
        method, revision = manifest["method"], manifest["schema_revision"]
        if METHODS[method] != engine.dialect.name:
            raise Invalid(
                f"{source} holds a {method} backup, which restores into a {METHODS[method]} "
                f"database; {database} is {engine.dialect.name}",
                {},
            )
        known = db_backup.known_revisions()
        if revision not in known:
            raise Conflict(
                f"{source}: the backup is of schema revision {revision}, which this version "
                f"of itsm does not know (its newest is {known[-1]}); restore it with itsm "
                f"{manifest.get('itsm_version', '?')}"
            )
        try:
            filled = db_backup.rows_beyond_seed(engine)
        except SQLAlchemyError as exc:
            raise Invalid(f"{database}: cannot open ({_first_line(exc)})", {}) from exc
        if filled:
            rows = ", ".join(f"{name}: {count} rows" for name, count in sorted(filled.items()))
            raise Conflict(
                f"{database} is not empty ({rows}); itsm restore only fills an empty database"
            )
        copies = {SQLITE_MEMBER: Path(work) / SQLITE_MEMBER, PG_DUMP_MEMBER: Path(work) / "dump"}
        for name, expected in manifest["members"].items():
            _check_member(source, archive, name, expected, copies.get(name))
        attachments = sorted(n for n in manifest["members"] if n.startswith(ATTACHMENTS_PREFIX))
        targets = _attachment_targets(source, attachments, attachment_dir)
        try:
            blob_members = backup_blobs.blob_members(manifest["members"])
        except backup_blobs.BlobRestoreError as exc:
            raise Invalid(f"{source}: {exc}", {}) from exc
        try:
            _load(ctx, source, archive, manifest, copies)
        except DatabaseCopyError as exc:
            raise Invalid(f"{source}: restore into {database} failed: {exc}", {}) from exc
        except SQLAlchemyError as exc:
            raise Invalid(
                f"{source}: restore into {database} failed: {_first_line(exc)}", {}
            ) from exc
        for name, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as stream, target.open("xb") as out:
                shutil.copyfileobj(stream, out, CHUNK_BYTES)
        store = _blob_store(ctx, attachment_dir)
        for name, digest in blob_members.items():
            with archive.open(name) as stream:
                try:
                    backup_blobs.restore_blob(store, digest, stream)
                except backup_blobs.BlobRestoreError as exc:
                    raise Invalid(f"{source}: {exc}", {}) from exc
    try:
        migrate(engine)
    except SQLAlchemyError as exc:
        raise Invalid(
            f"{database}: restored at schema revision {revision}, but the migration to "
            f"{known[-1]} failed: {_first_line(exc)}",
            {},
        ) from exc
    return RestoreSummary(
        database,
        method,
        revision,
        manifest["tables"],
        len(targets),
        known[-1],
        blobs=len(blob_members),
    )


def _matches_manifest(
    source: Path, member: str, found: dict[str, int], tables: dict[str, int]
) -> None:
    try:
        db_backup.check_counts(found, tables)
    except DatabaseCopyError as exc:
        raise Invalid(f"{source}: member {member} does not match {MANIFEST}: {exc}", {}) from exc


def _load(
    ctx: ServiceContext,
    source: Path,
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    copies: dict[str, Path],
) -> None:
    engine = ctx.db.engine
    method, revision, tables = manifest["method"], manifest["schema_revision"], manifest["tables"]
    if method == "sqlite":
        copy = copies[SQLITE_MEMBER]
        try:
            found = db_backup.sqlite_file_contents(copy)
        except DatabaseCopyError as exc:
            raise Invalid(f"{source}: member {SQLITE_MEMBER}: {exc}", {}) from exc
        _matches_manifest(source, SQLITE_MEMBER, found.counts, tables)
        if found.revision != revision:
            raise Invalid(
                f"{source}: member {SQLITE_MEMBER} is of schema revision {found.revision}, "
                f"{MANIFEST} says {revision}",
                {},
            )
        db_backup.migrate_to(engine, revision)
        db_backup.load_sqlite_file(engine, copy, tables)
    elif method == "pg_dump":
        pg_restore = shutil.which("pg_restore")
        if pg_restore is None:
            raise Invalid(f"{source} is a pg_dump archive: put pg_restore on PATH", {})
        try:
            archived = db_backup.pg_archive_counts(pg_restore, copies[PG_DUMP_MEMBER])
        except DatabaseCopyError as exc:
            raise Invalid(f"{source}: member {PG_DUMP_MEMBER}: {exc}", {}) from exc
        _matches_manifest(source, PG_DUMP_MEMBER, archived, tables)
        db_backup.migrate_to(engine, revision)
        db_backup.run_pg_restore(pg_restore, engine, copies[PG_DUMP_MEMBER], tables)
    else:
        db_backup.migrate_to(engine, revision)
        with engine.begin() as connection:
            schema_tables = db_backup.user_tables(connection)
            db_backup.clear_seed_rows(connection, schema_tables)
            wanted = {f"{ROWS_PREFIX}{t.name}.jsonl" for t in schema_tables}
            listed = {n for n in manifest["members"] if n.startswith(ROWS_PREFIX)}
            if wanted != listed:
                raise DatabaseCopyError(
                    f"the backup's tables differ from this schema's: {sorted(wanted ^ listed)}"
                )
            for table in schema_tables:
                name = f"{ROWS_PREFIX}{table.name}.jsonl"
                try:
                    with archive.open(name) as lines:
                        count = db_backup.load_table_lines(connection, table, lines)
                except DatabaseCopyError as exc:
                    raise Invalid(f"{source}: {name} {exc}", {}) from exc
                if count != tables.get(table.name):
                    raise DatabaseCopyError(
                        f"table {table.name}: {count} rows, the manifest says "
                        f"{tables.get(table.name)}"
                    )
            db_backup.reset_pg_sequences(connection, schema_tables)
